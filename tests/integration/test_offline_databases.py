"""The programmed plane offline: database files as a support bundle holds them (a backup of the lab's NB and
conf.db, standalone and clustered), checked declared vs programmed without probing; the files stay untouched and
no server outlives the command."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from segcheck.agent.adapters.db_file import ServedDatabase, is_database_file
from segcheck.agent.adapters.ovsdb import NorthboundReader
from segcheck.agent.core.sources import SourceUnavailable
from segcheck.agent.lab.seed import packaged_seed

from .planes import seeded

pytestmark = pytest.mark.lab


def backup(lab, url: str, database: str, out: Path) -> Path:
    """`ovsdb-client backup`: a standalone snapshot of a live database, as must-gather collects one."""
    with out.open("wb") as fh:
        subprocess.run(lab.ovs.argv("ovsdb-client", "backup", url, database), stdout=fh, check=True, timeout=30)
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def segcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segcheck.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bundle(lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    with seeded(lab):
        nb = backup(lab, lab.nb_url, "OVN_Northbound", out / "ovnnb_db.db")
        ovs = backup(lab, lab.ovs_url, "Open_vSwitch", out / "conf.db")
    return nb, ovs  # the lab's policies are cleared again: only the files hold them now


def test_verify_declared_against_a_bundles_databases_without_probing(bundle):
    nb, ovs = bundle
    before = (digest(nb), digest(ovs))
    done = segcheck("verify", "-f", str(packaged_seed()), "--nb", str(nb), "--ovs", str(ovs),
                    "--planes", "declared,programmed", "-o", "json")
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["errors"] == [] and report["cells"]
    assert all(c["observed"] is None and c["programmed"] is not None for c in report["cells"])
    assert all(c["programmed"]["verdict"] == c["expected"] for c in report["cells"])
    assert report["mapping"]["ok"] is True
    assert (digest(nb), digest(ovs)) == before


def test_a_clustered_database_file_is_served_as_standalone(lab, bundle, tmp_path):
    nb, _ = bundle
    clustered = tmp_path / "clustered.db"
    subprocess.run(lab.ovs.argv("ovsdb-tool", "create-cluster", str(clustered), str(nb), "unix:/nonexistent"),
                   check=True, timeout=30)
    assert is_database_file(str(clustered))
    with ServedDatabase(clustered) as url:
        reader = NorthboundReader(url)
        try:
            snap = reader.snapshot()
        finally:
            reader.close()
    assert snap.port_groups and snap.acls and "tenantblue_ovn_localnet_switch" in snap.switches


def test_the_server_of_a_file_is_gone_afterwards_and_bad_files_are_named(bundle, tmp_path):
    nb, _ = bundle
    served = ServedDatabase(nb)
    url = served.__enter__()
    socket_dir = Path(url.removeprefix("unix:")).parent
    pid = int((socket_dir / "ovsdb-server.pid").read_text())
    served.close()
    assert not running(pid) and not socket_dir.exists()
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    with pytest.raises(SourceUnavailable, match="junk.db"):
        ServedDatabase(junk).__enter__()
    assert shutil.which("ovsdb-server")

"""Fixtures for tests against the real lab (OVS + OVN + PostgreSQL in network namespaces; needs root).

Each session gets its own lab (unique namespace prefix, own state directory), so it can run beside a
developer's lab; it is torn down whatever happens to the tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.lab.errors import LabUnavailable
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.seed import packaged_seed_ipv6
from segcheck.agent.lab.topology import LabTopology, topology_from_inventory

CONNECT_TIMEOUT = 3.0


def _new_lab(topology: LabTopology | None = None) -> Lab:
    # Under /tmp with mode 755: PostgreSQL runs as user postgres and pytest's tmp dirs are private to root.
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-lab-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    return Lab(state_dir=state_dir, prefix=f"sct{secrets.token_hex(3)}-", topology=topology)


def _bring_up(lab: Lab) -> Lab:
    # The tests run as root with the packages scripts/setup.sh installs: a missing lab is a failure, not a skip.
    if os.geteuid() != 0:
        pytest.fail("the lab needs root (run the tests as root: bash scripts/test.sh)")
    try:
        lab.up()
    except LabUnavailable as exc:
        lab.down()
        pytest.fail(f"lab unavailable here: {exc} (bash scripts/setup.sh installs what it needs)")
    except BaseException:
        lab.down()
        raise
    return lab


def _tear_down(lab: Lab) -> None:
    lab.down()
    shutil.rmtree(lab.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The seed lab, shared by the session's tests (do not break it: use `make_lab` for destructive tests)."""
    instance = _new_lab()
    try:
        yield _bring_up(instance)
    finally:
        _tear_down(instance)


@pytest.fixture(scope="session")
def lab_ipv6() -> Iterator[Lab]:
    """The IPv6 seed's lab (examples/seed-ipv6: fd00:200::/64), built from its manifests as `segcheck lab up -f`
    builds it, recording them (so `--lab` without `-f` reads them), no policies programmed yet."""
    inventory, errors = load_inventory([packaged_seed_ipv6()])
    assert not errors, errors
    instance = _new_lab(topology_from_inventory(inventory, Ref("default", "tenantblue")))
    try:
        _bring_up(instance).remember_manifests([packaged_seed_ipv6()])
        yield instance
    finally:
        _tear_down(instance)


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Lab]]:
    """Extra labs for destructive tests; whatever the test leaves is torn down afterwards."""
    made: list[Lab] = []

    def factory(topology: LabTopology | None = None) -> Lab:
        instance = _new_lab(topology)
        made.append(instance)
        return _bring_up(instance)

    yield factory
    for instance in made:
        _tear_down(instance)


def tcp_exchange(lab: Lab, from_host: str, ip: str, port: int, *, read: bool = True, attempts: int = 3,
                 deadline: float = 10.0) -> str:
    """Connect from inside `from_host`'s namespace and return what the server sends first (with `read`;
    otherwise a completed handshake is enough, e.g. for PostgreSQL, which waits for the client).

    Bounded: at most `attempts` connections, and none started after `deadline` seconds.
    """
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({ip!r},{port}),timeout={CONNECT_TIMEOUT})\n"
        "s.settimeout(2)\n"
        + ("sys.stdout.write(s.recv(200).decode(errors='replace'))\n" if read else "s.close()\n")
    )
    end = time.monotonic() + deadline
    last = ""
    for _ in range(attempts):
        proc = lab.run_in(from_host, "python3", "-c", code, timeout=CONNECT_TIMEOUT + 5, check=False)
        if proc.returncode == 0:
            return proc.stdout
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        if time.monotonic() >= end:
            break
    raise AssertionError(f"{from_host} -> {ip}:{port} failed after {attempts} attempts: {last}")


@pytest.fixture(scope="session")
def tcp() -> Callable[..., str]:
    """`tcp_exchange` as a fixture, so test modules need not import conftest (works with or without a package)."""
    return tcp_exchange

"""Locating or provisioning Open vSwitch >= 3.1.3 for the lab.

Debian bookworm ships OVS 3.1.0, whose ovs-vswitchd aborts under stateful ACLs (fixed in 3.1.3, upstream
commit 6753b1086). When the system OVS is older, the lab unpacks Debian trixie's OVS and the libraries it
needs into a private prefix and runs each binary through that prefix's own dynamic loader. The host's
apt state is untouched: private sources list, lists, cache and dpkg status.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import LabUnavailable

MIN_VERSION = (3, 1, 3)
DEFAULT_CACHE_DIR = Path("/var/cache/segcheck/ovs")
TRIXIE_SOURCE = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main"
TRIXIE_PACKAGES = (
    "openvswitch-switch", "openvswitch-common", "libc6", "libssl3t64", "libunbound8", "libevent-2.1-7t64",
    "libzstd1", "libbpf1", "libelf1t64", "zlib1g", "libxdp1", "libnuma1", "libcap-ng0",
)
# Where each tool lives inside a Debian OVS package tree (relative to the root of the tree).
TOOL_PATHS = {
    "ovsdb-server": "usr/sbin/ovsdb-server",
    "ovs-vswitchd": "usr/lib/openvswitch-switch/ovs-vswitchd",
    "ovs-vsctl": "usr/bin/ovs-vsctl",
    "ovs-ofctl": "usr/bin/ovs-ofctl",
    "ovs-appctl": "usr/bin/ovs-appctl",
    "ovsdb-tool": "usr/bin/ovsdb-tool",
    "ovsdb-client": "usr/bin/ovsdb-client",
}
_MULTIARCH_LIB = "usr/lib/x86_64-linux-gnu"
_LOADER = f"{_MULTIARCH_LIB}/ld-linux-x86-64.so.2"
_READY_FILE = "ready.json"


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"\(Open vSwitch\)\s+(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class OvsInstall:
    """How to run each OVS binary: directly (system OVS) or through a private prefix's loader."""

    version: tuple[int, int, int]
    binaries: dict[str, Path]
    prefix: Path | None = None  # root of the unpacked tree, None for the system OVS
    pkgdatadir: Path = Path("/usr/share/openvswitch")
    launchers: dict[str, Path] = field(default_factory=dict)  # loader symlinks named like each tool

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def source(self) -> str:
        return f"private prefix {self.prefix}" if self.prefix else "system"

    def argv(self, tool: str, *args: str) -> list[str]:
        """Command line running `tool` with `args`."""
        binary = self.binaries[tool]
        if self.prefix is None:
            return [str(binary), *args]
        return self.loader_argv(tool, binary, self.launchers[tool], *args)

    def loader_argv(self, tool: str, binary: Path, launcher: Path, *args: str) -> list[str]:
        """Run a binary of this prefix (OVS's, or OVN's unpacked into it) through the prefix's loader."""
        assert self.prefix is not None
        # The prefix's glibc is newer than the system's: only its own loader can run these binaries, and
        # LD_LIBRARY_PATH would leak into (and break) system tools, so the path is given to the loader.
        return [str(launcher), "--library-path", str(self.prefix / _MULTIARCH_LIB), "--argv0", tool, str(binary),
                *args]

    def env(self) -> dict[str, str]:
        return {"OVS_PKGDATADIR": str(self.pkgdatadir)}

    @property
    def vswitch_schema(self) -> Path:
        return self.pkgdatadir / "vswitch.ovsschema"


def _system_binary(tool: str) -> Path | None:
    found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/openvswitch-switch:/usr/local/sbin")
    return Path(found) if found else None


def system_ovs() -> OvsInstall | None:
    """The system OVS, if every tool is there (whatever its version)."""
    binaries: dict[str, Path] = {}
    for tool in TOOL_PATHS:
        path = _system_binary(tool)
        if path is None:
            return None
        binaries[tool] = path
    try:
        out = subprocess.run([str(binaries["ovs-vswitchd"]), "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = parse_version(out)
    return OvsInstall(version=version, binaries=binaries) if version else None


def prefix_install(root: Path) -> OvsInstall | None:
    """The provisioned prefix under `root`, if complete and runnable."""
    try:
        meta = json.loads((root / _READY_FILE).read_text())
    except (OSError, ValueError):
        return None
    tree = root / "tree"
    binaries = {tool: tree / rel for tool, rel in TOOL_PATHS.items()}
    launchers = {tool: root / "bin" / tool for tool in TOOL_PATHS}
    if not all(p.exists() for p in [*binaries.values(), *launchers.values(), tree / _LOADER]):
        return None
    version = tuple(meta.get("version", ()))
    if len(version) != 3:
        return None
    return OvsInstall(version=version, binaries=binaries, prefix=tree,  # type: ignore[arg-type]
                      pkgdatadir=tree / "usr/share/openvswitch", launchers=launchers)


def locate_or_provision(cache_dir: Path = DEFAULT_CACHE_DIR, *, allow_download: bool = True) -> OvsInstall:
    """An OVS >= 3.1.3: the system's if recent enough, else a cached private prefix, else provision one."""
    system = system_ovs()
    if system is not None and system.version >= MIN_VERSION:
        return system
    cached = prefix_install(cache_dir)
    if cached is not None and cached.version >= MIN_VERSION:
        return cached
    have = f"system OVS is {system.version_text}" if system else "no system OVS"
    if not allow_download:
        raise LabUnavailable(f"Open vSwitch >= 3.1.3 needed ({have}) and no provisioned copy in {cache_dir}; "
                             "run `segcheck lab up` once with access to the Debian archive")
    return provision(cache_dir)


def provision(cache_dir: Path = DEFAULT_CACHE_DIR) -> OvsInstall:
    """Download Debian trixie's OVS and its libraries and unpack them under `cache_dir` (idempotent)."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise LabUnavailable(f"`{tool}` not found: provisioning OVS >= 3.1.3 needs apt and dpkg (Debian)")
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists():
        raise LabUnavailable("package debian-archive-keyring is missing (needed to verify Debian trixie's OVS)")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise LabUnavailable(f"cannot create {cache_dir}: run as root") from None
    with open(cache_dir / ".lock", "w") as lock:
        # Two labs (a developer's and the tests') may provision at once: one does it, the other re-uses it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = prefix_install(cache_dir)
        if cached is not None:
            return cached
        _download_and_unpack(cache_dir)
    installed = prefix_install(cache_dir)
    if installed is None or installed.version < MIN_VERSION:
        raise LabUnavailable(f"provisioned OVS in {cache_dir} is unusable or too old")
    return installed


def _apt_options(apt_root: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::SourceList={apt_root / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::Etc::Preferences={apt_root / 'preferences'}",
        "-o", "Dir::Etc::PreferencesParts=/nonexistent",
        "-o", f"Dir::State::Lists={apt_root / 'lists'}",
        "-o", f"Dir::State::status={apt_root / 'status'}",
        "-o", f"Dir::Cache={apt_root / 'cache'}",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Architecture=amd64",
        "-q",
    ]


def _run_apt(argv: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except subprocess.TimeoutExpired:
        raise LabUnavailable(f"{what} timed out (Debian archive unreachable?)") from None
    if proc.returncode != 0:
        raise LabUnavailable(f"{what} failed (needs the Debian archive for trixie's openvswitch-switch): "
                             f"{proc.stderr.strip()[-500:]}")


def _download(cache_dir: Path, packages: tuple[str, ...]) -> Path:
    """Download trixie's `packages` with a private apt state (the host's is untouched); returns the .deb folder."""
    apt_root = cache_dir / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt_root / sub).mkdir(parents=True, exist_ok=True)
    (apt_root / "sources.list").write_text(TRIXIE_SOURCE + "\n")
    (apt_root / "preferences").write_text("")
    (apt_root / "status").touch()
    options = _apt_options(apt_root)
    _run_apt(["apt-get", *options, "update"], cache_dir, "apt-get update (private trixie lists)")
    debs = cache_dir / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir()
    _run_apt(["apt-get", *options, "download", *packages], debs, f"apt-get download of trixie {' '.join(packages)}")
    return debs


def _unpack(debs: Path, tree: Path) -> None:
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True, timeout=120)


def _link_launchers(bindir: Path, loader: Path, tools: Iterable[str]) -> None:
    """A symlink to the loader named like each tool keeps `ps` readable (the process image is the loader)."""
    for tool in tools:
        link = bindir / tool
        if link.is_symlink() and Path(os.readlink(link)) == loader:
            continue  # running labs use it: leave it alone
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(loader)


def _clean(cache_dir: Path, debs: Path) -> None:
    # The unpacked tree is all we need; dropping the .debs and the trixie lists keeps the cache small.
    shutil.rmtree(debs, ignore_errors=True)
    shutil.rmtree(cache_dir / "apt", ignore_errors=True)


def add_to_prefix(cache_dir: Path, packages: tuple[str, ...], tools: Iterable[str]) -> None:
    """Unpack more trixie packages (e.g. OVN) into the provisioned prefix, with a launcher per tool; recorded
    in the ready file once complete (an interrupted run is simply redone)."""
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = json.loads((cache_dir / _READY_FILE).read_text())
        if not set(packages) <= set(meta.get("extra", [])):
            debs = _download(cache_dir, packages)
            _unpack(debs, cache_dir / "tree")
            _clean(cache_dir, debs)
        # Also when the packages are there: a tool may have joined the list since they were unpacked.
        _link_launchers(cache_dir / "bin", cache_dir / "tree" / _LOADER, tools)
        meta["extra"] = sorted(set(meta.get("extra", [])) | set(packages))
        tmp = cache_dir / f"{_READY_FILE}.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, cache_dir / _READY_FILE)  # other labs read it without the lock


def _download_and_unpack(cache_dir: Path) -> None:
    debs = _download(cache_dir, TRIXIE_PACKAGES)
    # Unpack into a scratch directory and rename into place, so a crash never leaves a half tree in use.
    scratch = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".unpack-"))
    (scratch / "tree").mkdir()
    _unpack(debs, scratch / "tree")
    (scratch / "bin").mkdir()
    for name in ("tree", "bin"):
        shutil.rmtree(cache_dir / name, ignore_errors=True)
        (scratch / name).rename(cache_dir / name)
    shutil.rmtree(scratch, ignore_errors=True)
    _link_launchers(cache_dir / "bin", cache_dir / "tree" / _LOADER, TOOL_PATHS)
    _clean(cache_dir, debs)

    probe = OvsInstall(version=(0, 0, 0), binaries={t: cache_dir / "tree" / r for t, r in TOOL_PATHS.items()},
                       prefix=cache_dir / "tree", launchers={t: cache_dir / "bin" / t for t in TOOL_PATHS})
    try:
        out = subprocess.run(probe.argv("ovs-vswitchd", "--version"), capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabUnavailable(f"unpacked OVS in {cache_dir} does not run: {exc}") from None
    version = parse_version(out)
    if version is None:
        raise LabUnavailable(f"unpacked OVS in {cache_dir} does not run: {out.strip()[:200]}")
    (cache_dir / _READY_FILE).write_text(json.dumps({"version": list(version), "packages": list(TRIXIE_PACKAGES)}))

"""`segcheck agent` (the DaemonSet's entrypoint) and `segcheck drift` (ask an agent, or check locally)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path
from typing import Any

import click

from segcheck.agent.adapters.auth import SCRAPE_METRICS, TokenFileAuth, TokenReviewAuth
from segcheck.agent.adapters.jsonlog import configure as configure_logging
from segcheck.agent.adapters.ovsdb import DEFAULT_NB, DEFAULT_OVS, NorthboundReader, OvsReader
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.lab.lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import DeclaredSource, FilesSource, KubernetesSource
from segcheck.agent.runtime.liveness import DEFAULT_OVN_RUNDIR, DEFAULT_OVS_RUNDIR, agent_liveness
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.runtime.sources import PROBERS, lab_sources, make_prober, node_sources, packaged_seed

from .output import EXIT_CANNOT_CHECK, EXIT_DRIFT, EXIT_OK, FORMATS, console, emit_data, fail, table


def _version() -> str:
    try:
        return package_version("segcheck")
    except PackageNotFoundError:
        return "dev"


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise fail(f"--listen {text!r}: expected HOST:PORT")
    return host or "0.0.0.0", int(port)


@click.command()
@click.option("--node", envvar="NODE_NAME", default=socket.gethostname(), show_default="$NODE_NAME or hostname",
              help="This node: only attachments here are probed from here.")
@click.option("--listen", default="0.0.0.0:9470", show_default=True, help="HOST:PORT of the HTTP API and /metrics.")
@click.option("--from-files", "files", multiple=True, type=click.Path(),
              help="Declared state from manifests instead of the Kubernetes API (offline, lab).")
@click.option("--kubeconfig", type=click.Path(), default=None, help="Default: in-cluster config, else ~/.kube/config.")
@click.option("--endpoints", "endpoint_files", multiple=True, type=click.Path(),
              help="segcheck ExternalEndpoints file(s) (with the Kubernetes API).")
@click.option("--lab", is_flag=True, help="Run against the embedded lab (its sockets, namespaces and manifests).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True)
@click.option("--nb", "nb_url", default=DEFAULT_NB, show_default=True)
@click.option("--ovs", "ovs_url", default=DEFAULT_OVS, show_default=True)
@click.option("--ovs-rundir", type=click.Path(path_type=Path), default=DEFAULT_OVS_RUNDIR, show_default=True,
              help="Where ovs-vswitchd's pidfile and control socket are (its liveness is asked there).")
@click.option("--ovn-rundir", type=click.Path(path_type=Path), default=DEFAULT_OVN_RUNDIR, show_default=True,
              help="Where ovn-controller's pidfile and control socket are.")
@click.option("--auth", default="tokenreview", show_default=True,
              help="Who may read /v1/matrix, /v1/drift and POST /v1/probe: 'tokenreview' (API server) or "
                   "'token-file:PATH'.")
@click.option("--metrics-auth", is_flag=True, help="Require a token allowed to 'get /metrics' for /metrics too.")
@click.option("--tls-cert-file", type=click.Path(path_type=Path), default=None,
              help="Serve HTTPS with this certificate (e.g. a service-CA serving cert; reloaded when it changes).")
@click.option("--tls-key-file", type=click.Path(path_type=Path), default=None)
@click.option("--interval", type=float, default=30.0, show_default=True, help="Re-probe every cell at least this often (s).")
@click.option("--sentinel-interval", type=float, default=1.0, show_default=True,
              help="Re-probe allowed cells (service paths) this often (s); 0 turns it off.")
@click.option("--probe-rate", type=float, default=2000.0, show_default=True, help="Probes per second at most.")
@click.option("--max-probes", type=int, default=5000, show_default=True, help="Probes per round at most.")
@click.option("--prober", type=click.Choice(PROBERS), default="raw", show_default=True)
@click.option("--ovnk-version", "ovnk", type=click.Choice(sorted(PROFILES)), default="4.14", show_default=True)
@click.option("--log-level", default="info", show_default=True)
def agent(node: str, listen: str, files: tuple[str, ...], kubeconfig: str | None, endpoint_files: tuple[str, ...],
          lab: bool, state_dir: Path, prefix: str, nb_url: str, ovs_url: str, ovs_rundir: Path, ovn_rundir: Path,
          auth: str, metrics_auth: bool,
          tls_cert_file: Path | None, tls_key_file: Path | None, interval: float,
          sentinel_interval: float, probe_rate: float, max_probes: int, prober: str, ovnk: str, log_level: str) -> None:
    """Run the drift-detection agent until SIGTERM/SIGINT."""
    configure_logging(log_level)
    host, port = _listen(listen)
    if (tls_cert_file is None) != (tls_key_file is None):
        raise fail("--tls-cert-file and --tls-key-file go together")
    if lab and not files:
        files = (str(packaged_seed()),)
    sources = lab_sources(state_dir, prefix, files) if lab else node_sources(nb_url, ovs_url)
    declared: DeclaredSource
    api_client: Any = None
    if files:
        declared = FilesSource(list(files) + list(endpoint_files))
    else:
        from segcheck.agent.adapters.kube import KubeSource
        from segcheck.agent.adapters.kube_api import build_api_client

        api_client = build_api_client(kubeconfig=kubeconfig)
        declared = KubernetesSource(KubeSource(api_client), endpoint_files)
    if auth.startswith("token-file:"):
        authenticate: Any = TokenFileAuth(Path(auth.split(":", 1)[1]))
    elif auth == "tokenreview":
        if api_client is None:
            from segcheck.agent.adapters.kube_api import build_api_client

            try:
                api_client = build_api_client(kubeconfig=kubeconfig)
            except Exception as exc:  # noqa: BLE001
                raise fail(f"--auth tokenreview needs Kubernetes credentials ({exc}); in the lab use token-file:PATH") from None
        authenticate = TokenReviewAuth(api_client)
    else:
        raise fail(f"--auth {auth!r}: expected tokenreview or token-file:PATH")
    the_agent = Agent(declared, NorthboundReader(sources.nb_url) if sources.nb_url else None,
                      OvsReader(sources.ovs_url) if sources.ovs_url else None, make_prober(prober), sources.locator,
                      node, profile=PROFILES[ovnk], interval=interval, max_probes=max_probes, probe_rate=probe_rate,
                      version=_version(), only_local=not lab, sentinel_interval=sentinel_interval,
                      liveness=agent_liveness(sources, declared, PROFILES[ovnk], ovs_rundir, ovn_rundir))
    tls = (tls_cert_file, tls_key_file) if tls_cert_file and tls_key_file else None
    service = AgentService(the_agent, host, port, authenticate, metrics_access=SCRAPE_METRICS if metrics_auth else None,
                           tls=tls)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    service.start()
    stopping.wait()
    service.stop()


def fetch(url: str, path: str, body: dict[str, Any] | None = None, token: str | None = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user names the agent URL
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise fail(f"agent answered {exc.code}: {detail}", EXIT_CANNOT_CHECK) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise fail(f"cannot reach the agent at {url}: {exc}", EXIT_CANNOT_CHECK) from None


def read_token(token: str | None, token_file: str | None) -> str | None:
    if token_file:
        try:
            return Path(token_file).read_text().strip()
        except OSError as exc:
            raise fail(f"--token-file {token_file}: {exc.strerror}") from None
    return token or os.environ.get("SEGCHECK_TOKEN")


@click.command()
@click.option("--agent", "agent_url", default=None, metavar="URL", help="Ask a running agent (http://HOST:9470).")
@click.option("-f", "--filename", "paths", multiple=True, type=click.Path(), help="Without --agent: manifests.")
@click.option("--lab", is_flag=True, help="Without --agent: check the lab.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True)
@click.option("--network", default=None, metavar="NS/NAD")
@click.option("--token", default=None, help="Bearer token for --agent (default: $SEGCHECK_TOKEN).")
@click.option("--token-file", default=None, type=click.Path(), help="Read the bearer token from a file.")
@click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def drift(agent_url: str | None, paths: tuple[str, ...], lab: bool, state_dir: Path, prefix: str, network: str | None,
          token: str | None, token_file: str | None, fmt: str) -> None:
    """The cells that drift now: from a running agent, or checked locally. Exit 0 none, 1 drift, 3 cannot check."""
    if agent_url is None:
        from .check_commands import check_networks

        if not paths:
            if not lab:
                raise fail("give --agent URL, or -f PATH / --lab to check locally")
            paths = (str(packaged_seed()),)
        sources = lab_sources(state_dir, prefix, paths) if lab else node_sources()
        raise click.exceptions.Exit(check_networks(paths, sources, network, "raw", "4.14", fmt, drift_only=True))
    query = f"?network={network}" if network else ""
    data = fetch(agent_url, "/v1/drift" + query, token=read_token(token, token_file))
    if "networks" not in data:
        raise fail(f"agent has no evaluation yet: {data.get('error', data)}", EXIT_CANNOT_CHECK)
    drifting = sum(len(n["cells"]) for n in data["networks"])
    if fmt != "table":
        emit_data(data, fmt)
    else:
        out = console()
        out.print(f"agent on node {data['node']}")
        rows = [[c["from"], c["to"], f"{c['port'] if c['port'] is not None else '*'}/{c['protocol']}", c["expected"],
                 (c["programmed"] or {}).get("verdict", "-"), (c["observed"] or {}).get("verdict", "-"), ",".join(c["drift"])]
                for n in data["networks"] for c in n["cells"]]
        out.print(table(None, ["FROM", "TO", "PORT", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT"], rows, [3, 4, 5]))
        for s in data["sources"]:
            if not s["up"]:
                out.print(f"[yellow]source {s['source']} down[/] ({s['detail']})")
    down = any(not s["up"] for s in data["sources"])
    raise click.exceptions.Exit(EXIT_DRIFT if drifting else (EXIT_CANNOT_CHECK if down else EXIT_OK))

"""`segcheck agent`: the DaemonSet's entrypoint."""

from __future__ import annotations

import signal
import threading
from importlib.metadata import PackageNotFoundError, version as package_version
from pathlib import Path
from typing import Any

import click

from segcheck.agent.adapters.auth import SCRAPE_METRICS, TokenFileAuth, TokenReviewAuth
from segcheck.agent.adapters.jsonlog import configure as configure_logging
from segcheck.agent.adapters.metrics import DEFAULT_MAX_DRIFT_PAIRS
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.runtime.declared import DeclaredSource, FilesSource, KubernetesSource
from segcheck.agent.runtime.liveness import agent_liveness
from segcheck.agent.runtime.service import AgentService

from .options import choose_sources, lab_options, node_options, ovnk_option, profile, recorded_lab_manifests
from .output import fail


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
@click.option("--listen", default="0.0.0.0:9470", show_default=True, help="HOST:PORT of the HTTP API and /metrics.")
@click.option("--from-files", "files", multiple=True, type=click.Path(),
              help="Declared state from manifests instead of the Kubernetes API (offline, lab).")
@click.option("--kubeconfig", type=click.Path(), default=None, help="Default: in-cluster config, else ~/.kube/config.")
@click.option("--endpoints", "endpoint_files", multiple=True, type=click.Path(),
              help="segcheck ExternalEndpoints file(s) (with the Kubernetes API).")
@lab_options
@node_options
@click.option("--ovs-rundir", type=click.Path(path_type=Path), default=None,
              help="Where ovs-vswitchd's pidfile and control socket are (its liveness is asked there) [default: /var/run/openvswitch].")
@click.option("--ovn-rundir", type=click.Path(path_type=Path), default=None,
              help="Where ovn-controller's pidfile and control socket are [default: /var/run/ovn-ic].")
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
@click.option("--drift-pairs", type=click.IntRange(min=0), default=DEFAULT_MAX_DRIFT_PAIRS, show_default=True,
              help="Worst drifting pairs exposed as segcheck_drift_pair_info (a cap on its series).")
@ovnk_option
@click.option("--log-level", default="info", show_default=True)
def agent(node_name: str, listen: str, files: tuple[str, ...], kubeconfig: str | None, endpoint_files: tuple[str, ...],
          lab: bool, state_dir: Path, prefix: str, nb_url: str, sb_url: str, ovs_url: str, ovs_rundir: Path | None,
          ovn_rundir: Path | None, auth: str, metrics_auth: bool,
          tls_cert_file: Path | None, tls_key_file: Path | None, interval: float,
          sentinel_interval: float, probe_rate: float, max_probes: int, drift_pairs: int, prober: str, ovnk: str,
          log_level: str) -> None:
    """Run the drift-detection agent until SIGTERM/SIGINT."""
    configure_logging(log_level)
    host, port = _listen(listen)
    if (tls_cert_file is None) != (tls_key_file is None):
        raise fail("--tls-cert-file and --tls-key-file go together")
    if lab and not files:
        files = recorded_lab_manifests(state_dir, prefix) or (str(packaged_seed()),)
    # The agent waits for its sources (a lab still coming up, a database restarting): no readiness check here.
    sources = choose_sources(lab, state_dir, prefix, files, nb_url, sb_url, ovs_url, prober, node_name,
                             must_be_up=False, rundirs=(ovs_rundir, ovn_rundir))
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
    if lab and ovnk is None:
        ovnk = Lab(state_dir=state_dir, prefix=prefix).ovnk_version  # expect what the lab writes
    the_agent = make_agent(sources, declared, node_name, profile(ovnk), interval=interval, max_probes=max_probes,
                           probe_rate=probe_rate, version=_version(), sentinel_interval=sentinel_interval,
                           liveness=agent_liveness(sources, declared, profile(ovnk)))
    tls = (tls_cert_file, tls_key_file) if tls_cert_file and tls_key_file else None
    service = AgentService(the_agent, host, port, authenticate, metrics_access=SCRAPE_METRICS if metrics_auth else None,
                           tls=tls, max_drift_pairs=drift_pairs)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    service.start()
    stopping.wait()
    service.stop()
    sources.close()

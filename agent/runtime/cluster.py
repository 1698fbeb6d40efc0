"""The declared state of a live cluster, read once for a one-shot command: the same list (and first sync) and the
same inventory the agent builds from the API, then the watches are stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..core.inventory import Inventory

SYNC_TIMEOUT = 30.0


class NoCluster(ValueError):
    """No cluster to read: no credentials were given or found (a usage error)."""


class ClusterUnreachable(RuntimeError):
    """The API server did not serve a complete first listing in time (the check could not be made)."""


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster: a kubeconfig file and context (None: in-cluster config, else ~/.kube/config)."""

    kubeconfig: str | None = None
    context: str | None = None
    endpoint_files: Sequence[str | Path] = field(default=())
    timeout: float = SYNC_TIMEOUT


def read_cluster(target: ClusterTarget, api_client: Any = None) -> tuple[Inventory, list[str]]:
    """List every resource segcheck reads (cluster-wide: peers in other namespaces matter) and build the
    inventory; the bad objects are returned as errors, as for files."""
    # Imported here: the Kubernetes client costs about a second of start-up that commands on files never need.
    from ..adapters.kube import KubeSource
    from ..adapters.kube_api import build_api_client
    from .declared import KubernetesSource

    if api_client is None:
        try:
            api_client = build_api_client(target.kubeconfig, target.context)
        except Exception as exc:  # noqa: BLE001 - the kubernetes client raises many kinds for a bad config
            raise NoCluster(f"no cluster credentials ({exc}); give the declared state with -f PATH, "
                            "or a cluster with --kubeconfig/--context") from None
    source = KubernetesSource(KubeSource(api_client, watch_timeout_seconds=5), target.endpoint_files)
    source.kube.start()
    try:
        if not source.kube.wait_for_sync(target.timeout):
            unsynced = sorted(name for name, h in source.kube.health().items() if h.available is not False and not h.synced)
            detail = "; ".join(f"{n}: {source.kube.health()[n].last_error or 'no answer'}" for n in unsynced)
            raise ClusterUnreachable(f"the API server did not list everything within {target.timeout:g} s ({detail})")
        inventory, errors = source.inventory()
    finally:
        source.kube.stop(timeout=2.0)
    return inventory, [str(e) for e in errors]

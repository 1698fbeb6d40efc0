"""The lab: a real OVS + OVN localnet topology in network namespaces.

Entry points: `Lab` (lab.py), `seed_topology`/`topology_from_inventory` and the topology dataclasses
(topology.py), `LabController` (controller.py: MultiNetworkPolicies programmed as OVN-Kubernetes does),
`locate_or_provision`/`OvsInstall` (ovs_install.py), `LabError`/`LabUnavailable` (errors.py).
"""

from .controller import ApplyReport, LabController
from .errors import LabCommandError, LabError, LabUnavailable
from .lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from .ovs_install import OvsInstall, locate_or_provision
from .topology import (LabNetwork, LabTopology, PhysicalHost, PodAttachment, ServiceListener, VmAttachment,
                       seed_topology, topology_from_inventory)

__all__ = [
    "ApplyReport", "DEFAULT_PREFIX", "DEFAULT_STATE_DIR", "Lab", "LabCommandError", "LabController", "LabError", "LabNetwork", "LabTopology",
    "LabUnavailable", "OvsInstall", "PhysicalHost", "PodAttachment", "ServiceListener", "VmAttachment",
    "locate_or_provision", "seed_topology", "topology_from_inventory",
]

"""How OVN-Kubernetes names what it programs for a secondary network (go-controller/pkg/util, pkg/types).

Names are used to find objects and to build the lab; ownership is read from `external_ids` (see
`ownership`), never parsed out of a name: port group and address set names are hashes.
"""

from __future__ import annotations

from ..model import Ref

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_U64 = 0xFFFFFFFFFFFFFFFF

LOCALNET_SWITCH = "ovn_localnet_switch"
LAYER2_SWITCH = "ovn_layer2_switch"
LOCALNET_PORT = "ovn_localnet_port"
LAYER2 = "layer2"
CONTROLLER_SUFFIX = "-network-controller"
# KubeVirt names a VM's launcher pod `virt-launcher-<vm>-<5 random characters>`.
LAUNCHER_POD_PREFIX = "virt-launcher-"
LAUNCHER_SUFFIX_LENGTH = 5


def hash_for_ovn(text: str) -> str:
    """`util.HashForOVN`: "a" + decimal FNV-1a 64 of the text (OVN names must start with a letter)."""
    h = _FNV64_OFFSET
    for byte in text.encode():
        h = ((h ^ byte) * _FNV64_PRIME) & _U64
    return f"a{h}"


def network_prefix(name: str) -> str:
    """`GetSecondaryNetworkPrefix`: `tenantblue` -> `tenantblue_`, `default/tenant-blue` -> `default.tenant.blue_`."""
    return name.replace("-", ".").replace("/", ".") + "_"


def network_scoped(network_name: str, name: str) -> str:
    """`GetNetworkScopedName` of a secondary network."""
    return network_prefix(network_name) + name


def network_switch(network_name: str, topology: str) -> str:
    """The logical switch of a localnet or layer2 network: one per network (CNI config `name`)."""
    return network_scoped(network_name, LAYER2_SWITCH if topology == LAYER2 else LOCALNET_SWITCH)


def localnet_switch(network_name: str) -> str:
    return network_scoped(network_name, LOCALNET_SWITCH)


def localnet_port(network_name: str) -> str:
    return network_scoped(network_name, LOCALNET_PORT)


def pod_port(nad: Ref, pod: Ref) -> str:
    """`GetSecondaryNetworkLogicalPortName`: a pod's (or virt-launcher pod's) port, scoped by its NAD `ns/name`."""
    return network_scoped(str(nad), f"{pod.namespace}_{pod.name}")


def launcher_port_prefix(nad: Ref, vm: Ref) -> str:
    """What the port of any launcher pod of `vm` starts with (the pod name's random suffix follows)."""
    return pod_port(nad, Ref(vm.namespace, LAUNCHER_POD_PREFIX + vm.name + "-"))


def is_launcher_port_of(port_name: str, nad: Ref, vm: Ref) -> bool:
    prefix = launcher_port_prefix(nad, vm)
    suffix = port_name[len(prefix):]
    return port_name.startswith(prefix) and len(suffix) == LAUNCHER_SUFFIX_LENGTH and suffix.isalnum()


def patch_port_to_br_int(localnet_port_name: str) -> str:
    return f"patch-{localnet_port_name}-to-br-int"


def patch_port_from_br_int(localnet_port_name: str) -> str:
    return f"patch-br-int-to-{localnet_port_name}"


def network_controller(network_name: str) -> str:
    """The owner-controller of everything a secondary network's controller writes."""
    return network_name + CONTROLLER_SUFFIX


def policy_key(policy: Ref) -> str:
    """`BuildNamespaceNameKey`: `ns:name`, the k8s.ovn.org/name of a policy's ACLs (and, now, port group)."""
    return f"{policy.namespace}:{policy.name}"


def parse_policy_key(text: str) -> Ref | None:
    namespace, sep, name = text.partition(":")
    return Ref(namespace, name) if sep and namespace and name and ":" not in name else None


# OVN's type of a logical switch port that stands for a port of another zone (interconnect, layer2 transit).
REMOTE_PORT_TYPE = "remote"

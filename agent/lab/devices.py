"""Device names in the lab (Linux caps them at 15 characters).

Names only need to be unique inside their own namespace, so they carry no lab prefix.
"""

from __future__ import annotations

import hashlib

IFNAMSIZ_MAX = 15


def _hex(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def ovs_side_port(kind: str, key: str) -> str:
    """The veth end plugged into br-int/br-ex for one host: `<kind><11 hex>` (kind is 2 letters)."""
    name = f"{kind[:2]}{_hex(key, 11)}"
    assert len(name) <= IFNAMSIZ_MAX
    return name


def kubevirt_hash(vm_network: str) -> str:
    """KubeVirt derives the launcher's device names from a hash of the VM's network name."""
    return _hex(vm_network, 11)


def launcher_pod_interface(vm_network: str) -> str:
    return f"pod{kubevirt_hash(vm_network)}"


def launcher_bridge(vm_network: str) -> str:
    return f"k6t-{kubevirt_hash(vm_network)}"


def launcher_tap(vm_network: str) -> str:
    return f"tap{kubevirt_hash(vm_network)}"


GUEST_INTERFACE = "eth0"
PHYSICAL_INTERFACE = "eth0"

"""Small builders of OVN northbound snapshots for tests of the programmed plane (no OVSDB in sight).

`seed_nb()` is the seed as OVN-Kubernetes programs it, produced by the lab's OVN-K-format writer
(`agent.core.ovnk.desired`), so fixtures carry the exact match strings and external_ids OVN-K writes. `Nb` builds
smaller worlds ACL by ACL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Network, Ref
from segcheck.agent.core.northbound import (
    Acl,
    LogicalPort,
    LogicalSwitch,
    NbSnapshot,
    PortGroup,
)
from segcheck.agent.core.ovnk.desired import DesiredState, desired_state

SEED = Path(__file__).resolve().parents[1] / "examples" / "seed"
NET_REF = Ref("default", "tenantblue")
NETWORK = Network(NET_REF, "tenantblue", "localnet")
SWITCH = ovnk_names.localnet_switch("tenantblue")  # tenantblue_ovn_localnet_switch
LOCALNET = ovnk_names.localnet_port("tenantblue")  # tenantblue_ovn_localnet_port
POD_LSP = ovnk_names.pod_port(NET_REF, Ref("default", "podclient"))  # default.tenantblue_default_podclient
VM_LSP = ovnk_names.pod_port(NET_REF, Ref("default", "virt-launcher-vm-server-8z2cx"))
POD_MAC, VM_MAC = "0a:58:c0:a8:c8:0a", "02:5e:c0:a8:c8:14"
SEED_LSPS = {"default/podclient": POD_LSP, "default/vm-server": VM_LSP}

def uuid_for(text: str) -> str:
    """A stable UUID-shaped id (the first 8 hex digits are what `acl/…` references show)."""
    h = hashlib.sha1(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def owned_by(policy: str, owner_type: str = "NetworkPolicy") -> tuple[tuple[str, str], ...]:
    """external_ids of an ACL or port group OVN-K owns for `ns:policy`."""
    return (("k8s.ovn.org/owner-type", owner_type),
            ("k8s.ovn.org/owner-controller", "tenantblue-network-controller"),
            ("k8s.ovn.org/name", policy))


def acl(ref: str, direction: str, priority: int, action: str, match: str, *, tier: int = 2, after_lb: bool | None = None,
        owner: str | None = "default:test", owner_type: str = "NetworkPolicy") -> Acl:
    """An ACL whose `acl/…` reference is `acl/<ref[:8]>`; egress (from-lport) ACLs apply after LB unless told."""
    if after_lb is None:
        after_lb = direction == "from-lport"
    ids = owned_by(owner, owner_type) if owner is not None else ()
    return Acl(uuid=ref, direction=direction, priority=priority, action=action, match=match, tier=tier,
               after_lb=after_lb, external_ids=ids)


@dataclass
class Nb:
    """A localnet switch with the seed's three ports, plus whatever ACLs, port groups and sets a test adds."""

    network_name: str = "tenantblue"
    switch: bool = True
    ports: dict[str, LogicalPort] = field(default_factory=dict)
    switch_acls: list[Acl] = field(default_factory=list)
    groups: dict[str, tuple[frozenset[str], list[Acl], tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ports:
            self.port(ovnk_names.localnet_port(self.network_name), "unknown", type="localnet")
            self.port(POD_LSP, f"{POD_MAC} 192.168.200.10")
            self.port(VM_LSP, f"{VM_MAC} 192.168.200.20")

    def port(self, name: str, *addresses: str, type: str = "") -> Nb:
        self.ports[name] = LogicalPort(name, type, addresses)
        return self

    def without_port(self, name: str) -> Nb:
        del self.ports[name]
        return self

    def on_switch(self, *acls: Acl) -> Nb:
        self.switch_acls.extend(acls)
        return self

    def group(self, name: str, ports: tuple[str, ...], *acls: Acl, owner: str | None = "default:test") -> Nb:
        self.groups[name] = (frozenset(ports), list(acls), owned_by(owner) if owner else ())
        return self

    def address_set(self, name: str, *addresses: str) -> Nb:
        self.sets[name] = addresses
        return self

    def build(self) -> NbSnapshot:
        acls = {a.uuid: a for a in self.switch_acls}
        groups = {}
        for name, (members, pg_acls, ids) in self.groups.items():
            acls.update((a.uuid, a) for a in pg_acls)
            groups[name] = PortGroup(name, members, tuple(a.uuid for a in pg_acls), ids)
        name = ovnk_names.localnet_switch(self.network_name)
        switches = {name: LogicalSwitch(name, tuple(sorted(self.ports)), tuple(a.uuid for a in self.switch_acls))} \
            if self.switch else {}
        return NbSnapshot(switches, dict(self.ports), groups, dict(self.sets), acls)


def from_desired(state: DesiredState, nb: Nb | None = None, base: NbSnapshot | None = None) -> NbSnapshot:
    """The snapshot the OVSDB adapter would read once the lab controller has written `state` (onto `base`,
    default the seed's switch and ports)."""
    base = base if base is not None else (nb or Nb()).build()
    acls, groups = dict(base.acls), dict(base.port_groups)
    for pg in state.port_groups:
        ids = []
        for spec in pg.acls:
            uuid = uuid_for(spec.ids.get("k8s.ovn.org/id", spec.match))
            acls[uuid] = Acl(uuid, spec.direction, spec.priority, spec.action, spec.match, spec.tier,
                             dict(spec.options).get("apply-after-lb") == "true", spec.external_ids, spec.name)
            ids.append(uuid)
        groups[pg.name] = PortGroup(pg.name, frozenset(pg.ports), tuple(ids), pg.external_ids)
    sets = {**base.address_sets, **{s.name: s.addresses for s in state.address_sets}}
    return NbSnapshot(base.switches, base.ports, groups, sets, acls)


def seed_inventory() -> Inventory:
    inv, errors = load_inventory([SEED])
    assert not errors, [str(e) for e in errors]
    return inv


def seed_nb(inv: Inventory | None = None) -> NbSnapshot:
    """The seed's policies as OVN-K programs them: the VM's port is named after its virt-launcher pod."""
    return from_desired(desired_state(inv or seed_inventory(), NET_REF, SEED_LSPS))

"""The lab's stand-in for OVN-Kubernetes' secondary network controller: MultiNetworkPolicies into NB.

`LabController(lab).apply(inventory)` replaces every port group, ACL and address set owned by the network's
controller with what OVN-K would write (`core.ovnk.desired`, in the shapes of the profile's OVN-K version), in
one NB transaction (one `ovn-nbctl` run chaining commands with `--`), then waits (bounded) until
ovn-controller has applied it. Ownership is read from external_ids (`core.ovnk.ownership`), never from names.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from segcheck.agent.core.enforcement import PROFILES, OvnkProfile
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import AttachmentKind, Ref
from segcheck.agent.core.ovnk import names
from segcheck.agent.core.ovnk.desired import AclSpec, DesiredState, desired_state
from segcheck.agent.core.ovnk.ids import LEGACY_NAME, OBJECT_NAME, OWNER_CONTROLLER
from segcheck.agent.core.ovnk.ownership import owned_by_network
from .errors import LabCommandError, LabError
from .lab import Lab
from .topology import launcher_pod_name

log = logging.getLogger(__name__)

SEED_NETWORK = Ref("default", "tenantblue")
SYNC_TIMEOUT = 15.0
NBCTL_TIMEOUT = 20.0


def _q(text: str) -> str:
    """An OVSDB string literal for ovn-nbctl's generic commands."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _map_args(column: str, items: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{column}:{_q(k)}={_q(v)}" for k, v in items]


def _atoms(value: Any) -> list[Any]:
    """An OVSDB JSON set (`["set", [...]]`) or single atom as a list of atoms."""
    if isinstance(value, list) and value and value[0] == "set":
        return list(value[1])
    return [value]


def _atom(value: Any) -> Any:
    return value[1] if isinstance(value, list) and len(value) == 2 and value[0] in ("uuid", "named-uuid") else value


def _map(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in value[1])) if isinstance(value, list) else ()


# Row shapes compared to tell "already programmed" from "must rewrite" (UUIDs left out: they change).
AclRow = tuple[str, str, int, str, str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class OwnedRows:
    """The NB rows one network controller owns, in a UUID-free shape (comparable across writes)."""

    port_groups: frozenset[tuple[str, frozenset[str], tuple[tuple[str, str], ...]]]
    acls: frozenset[AclRow]
    address_sets: frozenset[tuple[str, frozenset[str], tuple[tuple[str, str], ...]]]
    uuids: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return not (self.port_groups or self.acls or self.address_sets)

    def acl_matches(self) -> list[str]:
        return sorted(row[4] for row in self.acls)


@dataclass(frozen=True)
class ApplyReport:
    network: str
    controller: str
    profile: str
    port_groups: int
    acls: int
    address_sets: int
    unchanged: bool  # NB already held exactly this: nothing written
    seconds: float  # whole apply, including the wait for ovn-controller
    write_seconds: float
    unplaced: tuple[str, ...] = ()  # selected workloads with no logical switch port in the lab
    tier_supported: bool = True
    written: tuple[dict[str, Any], ...] = ()  # what was written, for display

    def as_dict(self) -> dict[str, Any]:
        return {
            "network": self.network, "controller": self.controller, "profile": self.profile,
            "port_groups": self.port_groups, "acls": self.acls, "address_sets": self.address_sets,
            "unchanged": self.unchanged, "seconds": self.seconds, "write_seconds": self.write_seconds,
            "unplaced": list(self.unplaced), "tier_supported": self.tier_supported, "written": list(self.written),
        }


def _acl_row(pg: str, acl: AclSpec, with_tier: bool) -> AclRow:
    return (pg, acl.direction, acl.priority, acl.action, acl.match, acl.name,
            acl.external_ids, acl.options + ((("tier", str(acl.tier)),) if with_tier else ()))


def expected_rows(desired: DesiredState, with_tier: bool) -> OwnedRows:
    return OwnedRows(
        frozenset((pg.name, frozenset(pg.ports), pg.external_ids) for pg in desired.port_groups),
        frozenset(_acl_row(pg.name, a, with_tier) for pg in desired.port_groups for a in pg.acls),
        frozenset((s.name, frozenset(s.addresses), s.external_ids) for s in desired.address_sets),
    )


class LabController:
    def __init__(self, lab: Lab, sync_timeout: float = SYNC_TIMEOUT) -> None:
        self.lab = lab
        self.sync_timeout = sync_timeout
        self._tier: bool | None = None

    # ----------------------------------------------------------------- reading NB

    def _list(self, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        out = self.lab.run_nbctl("--format=json", f"--columns={','.join(columns)}", "list", table,
                                 timeout=NBCTL_TIMEOUT)
        doc = json.loads(out)
        return [dict(zip(doc["headings"], row)) for row in doc["data"]]

    def tier_supported(self) -> bool:
        """ACL.tier exists from OVN 23.06 on; the lab's 23.03 lacks it (all ACLs then act as one tier)."""
        if self._tier is None:
            try:
                self.lab.run_nbctl("--columns=tier", "list", "ACL", timeout=NBCTL_TIMEOUT)
                self._tier = True
            except LabCommandError:
                self._tier = False
        return self._tier

    def owned(self, network_name: str) -> OwnedRows:
        """The rows `network_name`'s controller owns now."""
        controller = names.network_controller(network_name)
        ports = {_atom(r["_uuid"]): r["name"] for r in self._list("Logical_Switch_Port", ["_uuid", "name"])}
        acl_cols = ["_uuid", "direction", "priority", "action", "match", "name", "external_ids", "options"]
        with_tier = self.tier_supported()
        acl_rows = {_atom(r["_uuid"]): r for r in self._list("ACL", acl_cols + (["tier"] if with_tier else []))}
        pgs, acls, pg_uuids, acl_uuids = set(), set(), [], []
        for r in self._list("Port_Group", ["_uuid", "name", "ports", "acls", "external_ids"]):
            ids = _map(r["external_ids"])
            if not owned_by_network(dict(ids), network_name):
                continue
            pg_uuids.append(_atom(r["_uuid"]))
            pgs.add((r["name"], frozenset(ports.get(_atom(p), _atom(p)) for p in _atoms(r["ports"])), ids))
            for acl_uuid in (_atom(a) for a in _atoms(r["acls"])):
                a = acl_rows.get(acl_uuid)
                if a is None:
                    continue
                acl_uuids.append(acl_uuid)
                name = _atoms(a["name"])
                options = _map(a["options"]) + ((("tier", str(a["tier"])),) if with_tier else ())
                acls.add((r["name"], a["direction"], int(a["priority"]), a["action"], a["match"],
                          str(name[0]) if name else "", _map(a["external_ids"]), tuple(sorted(options))))
        # ACLs owned by this controller but hanging off no port group (left by someone else) still count.
        for acl_uuid, a in acl_rows.items():
            if acl_uuid not in acl_uuids and dict(_map(a["external_ids"])).get(OWNER_CONTROLLER) == controller:
                acl_uuids.append(acl_uuid)
                acls.add(("", a["direction"], int(a["priority"]), a["action"], a["match"], "",
                          _map(a["external_ids"]), _map(a["options"])))
        sets, set_uuids = set(), []
        for r in self._list("Address_Set", ["_uuid", "name", "addresses", "external_ids"]):
            ids = _map(r["external_ids"])
            if dict(ids).get(OWNER_CONTROLLER) == controller:
                set_uuids.append(_atom(r["_uuid"]))
                sets.add((r["name"], frozenset(str(x) for x in _atoms(r["addresses"])), ids))
        return OwnedRows(frozenset(pgs), frozenset(acls), frozenset(sets),
                         {"Port_Group": tuple(pg_uuids), "ACL": tuple(acl_uuids), "Address_Set": tuple(set_uuids)})

    # ----------------------------------------------------------------- writing NB

    def lsp_names(self, inventory: Inventory, network: Ref) -> dict[str, str]:
        """Attachment key -> logical switch port, the way the lab wired it (a VM's port is its launcher's, and
        each is named after the workload's own NAD reference, which may be another namespace's NAD of the
        network)."""
        by_ref = {(a.namespace, a.name): a.pod_ref for a in self.lab.topology.attachments}
        out = {}
        for att in inventory.attachments_on(network):
            pod = by_ref.get((att.ref.namespace, att.ref.name))
            if pod is None:
                pod = Ref(att.ref.namespace, launcher_pod_name(att.ref)) if att.kind is AttachmentKind.VM else att.ref
            out[att.key] = names.pod_port(att.nad_ref, pod)  # named after the NAD the workload attached through
        return out

    def _replace_commands(self, current: OwnedRows, desired: DesiredState, lsp_uuids: Mapping[str, str],
                          with_tier: bool) -> list[list[str]]:
        # Deleting a port group garbage-collects its ACLs (they are not root rows); address sets are root rows.
        cmds: list[list[str]] = [["destroy", "Port_Group", u] for u in current.uuids.get("Port_Group", ())]
        cmds += [["destroy", "Address_Set", u] for u in current.uuids.get("Address_Set", ())]
        for s in desired.address_sets:
            addrs = ",".join(_q(a) for a in s.addresses)
            cmds.append(["create", "Address_Set", f"name={_q(s.name)}", f"addresses=[{addrs}]",
                         *_map_args("external_ids", s.external_ids)])
        n = 0
        for pg in desired.port_groups:
            refs = []
            for acl in pg.acls:
                n += 1
                refs.append(f"@acl{n}")
                cmds.append([f"--id=@acl{n}", "create", "ACL", f"direction={acl.direction}",
                             f"priority={acl.priority}", f"action={acl.action}", f"match={_q(acl.match)}",
                             f"name={_q(acl.name)}", *_map_args("external_ids", acl.external_ids),
                             *_map_args("options", acl.options), *([f"tier={acl.tier}"] if with_tier else [])])
            ports = ",".join(lsp_uuids[p] for p in pg.ports)
            cmds.append(["create", "Port_Group", f"name={_q(pg.name)}", f"ports=[{ports}]",
                         f"acls=[{','.join(refs)}]", *_map_args("external_ids", pg.external_ids)])
        return cmds

    def _transact(self, cmds: list[list[str]]) -> None:
        if not cmds:
            return
        argv: list[str] = []
        for cmd in cmds:
            argv += (["--"] if argv else []) + cmd
        self.lab.run_nbctl(*argv, timeout=NBCTL_TIMEOUT)

    def apply_desired(self, desired: DesiredState, network_name: str, profile: str = "") -> ApplyReport:
        t0 = time.monotonic()
        with_tier = self.tier_supported()
        current = self.owned(network_name)
        lsp_uuids = {r["name"]: _atom(r["_uuid"]) for r in self._list("Logical_Switch_Port", ["_uuid", "name"])}
        missing = sorted({p for pg in desired.port_groups for p in pg.ports if p not in lsp_uuids})
        if missing:
            raise LabError(f"logical switch ports not in the lab: {', '.join(missing)} (bring the lab up with "
                           "the same manifests)")
        unchanged = current == expected_rows(desired, with_tier)
        t1 = time.monotonic()
        if not unchanged:
            self._transact(self._replace_commands(current, desired, lsp_uuids, with_tier))
        write_seconds = time.monotonic() - t1
        self.lab.sync_hv(timeout=self.sync_timeout)
        written = tuple(
            {"port_group": pg.name, "owner": pg.ids.get(OBJECT_NAME) or pg.ids.get(LEGACY_NAME, ""), "ports": list(pg.ports),
             "acls": [{"direction": a.direction, "priority": a.priority, "action": a.action, "match": a.match}
                      for a in pg.acls]}
            for pg in desired.port_groups)
        return ApplyReport(
            network=network_name, controller=desired.controller, profile=profile,
            port_groups=len(desired.port_groups), acls=len(desired.acls), address_sets=len(desired.address_sets),
            unchanged=unchanged, seconds=round(time.monotonic() - t0, 3), write_seconds=round(write_seconds, 3),
            unplaced=desired.unplaced, tier_supported=with_tier, written=written)

    def apply(self, inventory: Inventory, network: Ref = SEED_NETWORK,
              profile: OvnkProfile | None = None) -> ApplyReport:
        """Program the MultiNetworkPolicies OVN-K would enforce on `network` in the NB shapes of one OVN-K
        version (default: the lab's), replacing what its controller owned in any version's shapes, then wait
        for ovn-controller. Idempotent: an unchanged NB is not rewritten."""
        profile = profile or PROFILES[self.lab.ovnk_version]
        net = inventory.networks.get(network)
        if net is None:
            raise LabError(f"no NetworkAttachmentDefinition {network} in the manifests")
        desired = desired_state(inventory, network, self.lsp_names(inventory, network), profile)
        report = self.apply_desired(desired, net.cni_name, profile.name)
        self.lab.remember_ovnk_version(profile.name)
        log.info("applied %d port groups, %d ACLs, %d address sets for %s in %.3fs", report.port_groups,
                 report.acls, report.address_sets, network, report.seconds)
        return report

    def clear(self, network_name: str | None = None) -> dict[str, int]:
        """Remove every port group, ACL and address set owned by the network's controller (one transaction).
        `network_name` is the NAD's CNI `name` (default: the lab network's)."""
        name = network_name or self.lab.topology.network.name
        current = self.owned(name)
        empty = DesiredState(names.network_controller(name), (), ())
        self._transact(self._replace_commands(current, empty, {}, False))
        self.lab.sync_hv(timeout=self.sync_timeout)
        return {"port_groups": len(current.port_groups), "acls": len(current.acls),
                "address_sets": len(current.address_sets)}


__all__ = ["ApplyReport", "LabController", "OwnedRows", "SEED_NETWORK", "expected_rows"]

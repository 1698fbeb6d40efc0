"""OVSDB adapter (ovsdbapp): OVN northbound and the node's Open_vSwitch database, read into core snapshots.

Each source keeps an IDL replica that the server pushes changes into (OVSDB monitor); `on_change` fires
from the IDL's own notify hook, so the agent reacts to a tampered ACL without polling. Snapshots are built by
a read-only command in the connection thread, so they are consistent across tables.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ovsdbapp.backend.ovs_idl import command, connection
from ovsdbapp.backend.ovs_idl import idlutils
from ovsdbapp.schema.open_vswitch import impl_idl as ovs_impl
from ovsdbapp.schema.ovn_northbound import impl_idl as nb_impl

from ..core.northbound import (
    APPLY_AFTER_LB,
    Acl,
    LogicalPort,
    LogicalSwitch,
    NbSnapshot,
    OvsSnapshot,
    PortGroup,
    parse_bridge_mappings,
)
from ..core.sources import SourceUnavailable

LOG = logging.getLogger(__name__)

NB_TABLES = ("Logical_Switch", "Logical_Switch_Port", "Port_Group", "Address_Set", "ACL")
OVS_TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface")
DEFAULT_NB = "unix:/var/run/ovn-ic/ovnnb_db.sock"  # OpenShift 4.14, interconnect: per-node NB
DEFAULT_SB = "unix:/var/run/ovn-ic/ovnsb_db.sock"
DEFAULT_OVS = "unix:/var/run/openvswitch/db.sock"


class SourceDown(SourceUnavailable):
    """The database cannot be read now; retrying later can help."""


def _opt(value: Any) -> Any:
    """OVSDB optional columns come as 0- or 1-element lists."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _items(mapping: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in dict(mapping or {}).items()))


class _NotifyingIdl(connection.OvsdbIdl):
    """An IDL that calls back on every row change the server pushes."""

    on_change: Callable[[], None] | None = None

    def notify(self, event: str, row: Any, updates: Any = None) -> None:  # noqa: D401 - ovs.db.idl hook
        callback = self.on_change
        if callback is not None:
            callback()


class _Read(command.ReadOnlyCommand):
    def __init__(self, api: Any, build: Callable[[dict[str, Any]], Any]):
        super().__init__(api)
        self._build = build

    def run_idl(self, txn: Any) -> None:
        self.result = self._build(self.api.tables)


def _nb_snapshot(tables: dict[str, Any]) -> NbSnapshot:
    acls = {}
    for row in tables["ACL"].rows.values():
        options = dict(getattr(row, "options", {}) or {})
        acls[str(row.uuid)] = Acl(
            uuid=str(row.uuid), direction=row.direction, priority=int(row.priority), action=row.action,
            match=row.match, tier=int(getattr(row, "tier", 0) or 0),
            after_lb=str(options.get(APPLY_AFTER_LB, "false")).lower() == "true",
            external_ids=_items(row.external_ids), name=_opt(row.name))
    ports = {}
    for row in tables["Logical_Switch_Port"].rows.values():
        ports[row.name] = LogicalPort(row.name, row.type or "", tuple(row.addresses), _items(row.external_ids),
                                      _items(row.options), _opt(getattr(row, "up", None)))
    switches = {
        row.name: LogicalSwitch(row.name, tuple(sorted(p.name for p in row.ports)), tuple(str(a.uuid) for a in row.acls),
                                _items(row.external_ids))
        for row in tables["Logical_Switch"].rows.values()
    }
    groups = {
        row.name: PortGroup(row.name, frozenset(p.name for p in row.ports), tuple(str(a.uuid) for a in row.acls),
                            _items(row.external_ids))
        for row in tables["Port_Group"].rows.values()
    }
    sets = {row.name: tuple(row.addresses) for row in tables["Address_Set"].rows.values()}
    return NbSnapshot(switches, ports, groups, sets, acls)


def _ovs_snapshot(tables: dict[str, Any]) -> OvsSnapshot:
    root = next(iter(tables["Open_vSwitch"].rows.values()), None)
    ids = dict(root.external_ids) if root is not None else {}
    bridges = {row.name: tuple(sorted(p.name for p in row.ports)) for row in tables["Bridge"].rows.values()}
    iface_ids, state = {}, {}
    for row in tables["Interface"].rows.values():
        ext = dict(row.external_ids)
        if "iface-id" in ext:
            iface_ids[row.name] = ext["iface-id"]
        state[row.name] = f"admin={_opt(row.admin_state)} link={_opt(row.link_state)}"
    return OvsSnapshot(parse_bridge_mappings(ids.get("ovn-bridge-mappings", "")), bridges, iface_ids, state)


class OvsdbSource:
    """One OVSDB database, connected lazily and reconnected by the IDL itself after a server restart."""

    def __init__(self, url: str, schema: str, tables: tuple[str, ...], name: str,
                 on_change: Callable[[], None] | None = None, timeout: float = 5.0):
        self.url, self.schema, self.tables, self.name = url, schema, tables, name
        self.on_change = on_change
        self.timeout = timeout
        self._lock = threading.Lock()
        self._api: Any = None
        self._idl: _NotifyingIdl | None = None
        self.last_success: float | None = None
        self.last_error: str | None = None

    def _connect(self) -> Any:
        with self._lock:
            if self._api is not None:
                return self._api
            try:
                helper = idlutils.get_schema_helper(self.url, self.schema)
            except Exception as exc:  # noqa: BLE001 - any failure to reach the server is "down"
                raise SourceDown(f"{self.name}: cannot reach {self.url}: {exc}") from None
            for table in self.tables:
                helper.register_table(table)
            idl = _NotifyingIdl(self.url, helper)
            idl.on_change = self.on_change
            conn = connection.Connection(idl=idl, timeout=self.timeout)
            base = nb_impl.OvnNbApiIdlImpl if self.schema == "OVN_Northbound" else ovs_impl.OvsdbIdl
            # ovsdbapp keeps one connection per API *class*; a class of our own per source keeps two readers
            # (or a reader re-created after close) from silently sharing a stale connection.
            impl = type(f"{base.__name__}_{self.name}", (base,), {"_ovsdb_connection": None})
            try:
                self._api = impl(conn)
            except Exception as exc:  # noqa: BLE001
                raise SourceDown(f"{self.name}: cannot start a connection to {self.url}: {exc}") from None
            self._idl = idl
            return self._api

    @property
    def connected(self) -> bool:
        idl = self._idl
        return idl is not None and bool(idl._session.is_connected())  # noqa: SLF001 - the IDL exposes no public probe

    def read(self, build: Callable[[dict[str, Any]], Any]) -> Any:
        api = self._connect()
        if not self.connected:
            self.last_error = f"{self.url}: not connected"
            raise SourceDown(f"{self.name}: {self.last_error}")
        try:
            result = _Read(api, build).execute(check_error=True)
        except Exception as exc:  # noqa: BLE001
            self.last_error = str(exc)
            raise SourceDown(f"{self.name}: read failed: {exc}") from None
        self.last_success = time.time()
        self.last_error = None
        return result

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                try:
                    self._api.ovsdb_connection.stop(timeout=2)
                except Exception:  # noqa: BLE001 - closing a dead connection
                    LOG.debug("closing %s", self.name, exc_info=True)
            self._api = None
            self._idl = None


class NorthboundReader(OvsdbSource):
    def __init__(self, url: str = DEFAULT_NB, on_change: Callable[[], None] | None = None, timeout: float = 5.0):
        super().__init__(url, "OVN_Northbound", NB_TABLES, "ovn_nb", on_change, timeout)

    def snapshot(self) -> NbSnapshot:
        result: NbSnapshot = self.read(_nb_snapshot)
        return result


class OvsReader(OvsdbSource):
    def __init__(self, url: str = DEFAULT_OVS, on_change: Callable[[], None] | None = None, timeout: float = 5.0):
        super().__init__(url, "Open_vSwitch", OVS_TABLES, "ovs", on_change, timeout)

    def snapshot(self) -> OvsSnapshot:
        result: OvsSnapshot = self.read(_ovs_snapshot)
        return result

"""Hosts on the physical side of a localnet network, in segcheck's two forms.

- `ExternalEndpoint` (segcheck.io/v1alpha1, namespaced): one host per object, the custom resource a cluster
  validates at admission (deploy/crds) and the agent lists and watches;
- `ExternalEndpoints`: a list of hosts in one document, for files (offline use, the lab, a ConfigMap).

Both declare, per port, the application-level check an allowed cell to it gets (`tcp`, `http: {path}`,
`postgres: {user, database, sslmode}`). Endpoint names are one namespace (the matrix calls them `ext:NAME`):
the same name twice is an error, whichever form declares it.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from . import fields
from .fields import InvalidObject
from .model import SSL_MODES, ExternalEndpoint, HttpCheck, PortCheck, PostgresCheck, Ref, ServicePort, TcpCheck

ENDPOINTS_API_VERSION = "segcheck.io/v1alpha1"
ENDPOINTS_KIND = "ExternalEndpoints"
EXTERNAL_ENDPOINT_KIND = "ExternalEndpoint"
_ENDPOINT_FIELDS = {"network", "ips", "ports", "description"}
_PORT_FIELDS = {"port", "protocol", "check"}
# What a PostgreSQL startup message can carry (no NUL; names as PostgreSQL accepts them, at most 63 bytes).
_PG_NAME = re.compile(r"^[^\x00]{1,63}$")
_HTTP_PATH = re.compile(r"^/[\x21-\x7e]*$")  # printable, no spaces: it goes into a request line
# A NAD reference, NAME or NAMESPACE/NAME (DNS-1123 label / subdomain), as the custom resource's schema has it.
_NETWORK = re.compile(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def parse_port_check(raw: Any, where: str) -> PortCheck:
    """`{tcp: {}}`, `{http: {path: /healthz}}` or `{postgres: {user: app, database: appdb, sslmode: prefer}}`."""
    data = fields.mapping(raw, where)
    if len(data) != 1:
        raise InvalidObject(f"{where}: give exactly one of tcp, http, postgres")
    [(kind, body)] = data.items()
    config = fields.mapping(body, f"{where}.{kind}")
    if kind == "tcp":
        fields.only(config, set(), f"{where}.tcp")
        return TcpCheck()
    if kind == "http":
        fields.only(config, {"path"}, f"{where}.http")
        path = config.get("path", "/")
        if not isinstance(path, str) or not _HTTP_PATH.match(path):
            raise InvalidObject(f"{where}.http.path: expected an absolute path without spaces, got {path!r}")
        return HttpCheck(path)
    if kind == "postgres":
        fields.only(config, {"user", "database", "sslmode"}, f"{where}.postgres")
        names = {}
        for key in ("user", "database"):
            value = fields.text(config.get(key), f"{where}.postgres.{key}")
            if not _PG_NAME.match(value):
                raise InvalidObject(f"{where}.postgres.{key}: at most 63 characters, no NUL")
            names[key] = value
        sslmode = config.get("sslmode", "prefer")
        if sslmode not in SSL_MODES:
            raise InvalidObject(f"{where}.postgres.sslmode: expected one of {', '.join(SSL_MODES)}, got {sslmode!r}")
        return PostgresCheck(names["user"], names["database"], sslmode)
    raise InvalidObject(f"{where}: unknown check {kind!r} (expected tcp, http or postgres)")


def _ports(raw: Any, where: str) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    for j, item in enumerate(fields.items(raw, where)):
        at = f"{where}[{j}]"
        data = fields.mapping(item, at)
        fields.only(data, _PORT_FIELDS, at)
        port = ServicePort(fields.port_number(data.get("port"), f"{at}.port"),
                           fields.protocol(data.get("protocol", "TCP"), f"{at}.protocol"),
                           parse_port_check(data["check"], f"{at}.check") if data.get("check") is not None else None)
        if any((p.port, p.protocol) == (port.port, port.protocol) for p in ports):
            raise InvalidObject(f"{at}: {port.port}/{port.protocol.value} is listed twice")
        ports.append(port)
    return tuple(ports)


def _endpoint(name: str, data: dict[str, Any], where: str, namespace: str) -> ExternalEndpoint:
    """The fields both forms share; a `network` without namespace is in `namespace`."""
    fields.only(data, _ENDPOINT_FIELDS, where)
    if "/" in name or ":" in name:
        raise InvalidObject(f"{where}: name {name!r} may not contain '/' or ':'")
    ips = tuple(fields.address(x, f"{where}.ips") for x in fields.items(data.get("ips"), f"{where}.ips"))
    if not ips:
        raise InvalidObject(f"{where}.ips: at least one address is required")
    if any("%" in str(x) for x in fields.items(data.get("ips"), f"{where}.ips")):
        raise InvalidObject(f"{where}.ips: an address of a host on the network has no zone (%interface)")
    network = None
    if data.get("network") is not None:
        nad = fields.text(data["network"], f"{where}.network")
        if not _NETWORK.match(nad):
            raise InvalidObject(f"{where}.network: expected NAME or NAMESPACE/NAME of a NAD, got {nad!r}")
        network = Ref.parse(nad, namespace)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidObject(f"{where}.description: expected a string")
    return ExternalEndpoint(name, ips, network, _ports(data.get("ports"), f"{where}.ports"), description or "")


def _check_api_version(obj: dict[str, Any]) -> None:
    if obj.get("apiVersion") != ENDPOINTS_API_VERSION:
        raise InvalidObject(f"apiVersion must be {ENDPOINTS_API_VERSION}")
    fields.only(obj, {"apiVersion", "kind", "metadata", "spec", "status"}, "")


def parse_endpoints(obj: dict[str, Any]) -> list[ExternalEndpoint]:
    """The file form:

    apiVersion: segcheck.io/v1alpha1
    kind: ExternalEndpoints
    spec:
      endpoints:
      - name: db
        network: default/tenantblue
        ips: [192.168.200.5]
        ports: [{port: 5432, protocol: TCP, check: {postgres: {user: app, database: appdb}}}]
    """
    _check_api_version(obj)
    spec = fields.mapping(obj.get("spec"), "spec")
    fields.only(spec, {"endpoints"}, "spec")
    out: list[ExternalEndpoint] = []
    for i, raw in enumerate(fields.items(spec.get("endpoints"), "spec.endpoints")):
        where = f"spec.endpoints[{i}]"
        data = dict(fields.mapping(raw, where))
        name = fields.text(data.pop("name", None), f"{where}.name")
        out.append(_endpoint(name, data, where, "default"))
    return out


def parse_external_endpoint(obj: dict[str, Any]) -> ExternalEndpoint:
    """The custom resource: `metadata.name` names the endpoint; `spec` holds network, ips, ports, description."""
    _check_api_version(obj)
    ref, _ = fields.metadata(obj, namespaced=True)
    return _endpoint(ref.name, fields.mapping(obj.get("spec"), "spec"), "spec", ref.namespace)


def add_endpoints(known: list[ExternalEndpoint], new: Iterable[ExternalEndpoint]) -> None:
    """Append `new` to `known`, refusing a name already taken (by either form)."""
    names = {e.name for e in known}
    batch = list(new)
    for endpoint in batch:
        if endpoint.name in names:
            raise InvalidObject(f"external endpoint {endpoint.name!r} is declared twice (names are cluster-wide)")
        names.add(endpoint.name)
    known.extend(batch)

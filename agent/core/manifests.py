"""Raw Kubernetes objects (dicts, as in manifests or API responses) -> the core model.

One bad object never hides the good ones: each error is collected with the file and object it came from.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Iterable

from .external_endpoints import (  # segcheck's own kinds, parsed there
    ENDPOINTS_KIND,
    EXTERNAL_ENDPOINT_KIND,
    add_endpoints,
    parse_endpoints,
    parse_external_endpoint,
)
from .fields import InvalidObject
from .fields import address as _ip
from .fields import items as _list
from .fields import mapping as _mapping
from .fields import metadata as _metadata
from .fields import port_number as _port_number
from .fields import protocol as _protocol
from .fields import text as _str
from .input_limits import check_shape, load_embedded_json
from .inventory import Inventory, SkippedObject
from .model import (
    Attachment,
    AttachmentKind,
    IPAddress,
    NamespaceInfo,
    Network,
    Protocol,
    Ref,
)
from .policy import POLICY_FOR_ANNOTATION, Direction, IPBlock, Peer, Policy, PortSpec, Rule
from .selectors import SelectorError, parse_selector

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
MODELLED_KINDS = frozenset({"NetworkAttachmentDefinition", "MultiNetworkPolicy", "Pod", "VirtualMachine",
                            "VirtualMachineInstance", "Namespace", ENDPOINTS_KIND, EXTERNAL_ENDPOINT_KIND, "List"})
MNP_API_VERSIONS = ("k8s.cni.cncf.io/v1beta1", "k8s.cni.cncf.io/v1beta2")
# API groups whose kinds segcheck reads: an unknown kind there is a mistake (a typo), not something to skip.
MODELLED_GROUPS = frozenset({"k8s.cni.cncf.io", "kubevirt.io", "segcheck.io"})
# Its bridge mappings are checked where they take effect, in each node's OVS (localnet-unmapped findings).
CHECKED_ON_NODES = "NodeNetworkConfigurationPolicy"
# Kinds of the core group ("v1") that exist but do not bear on secondary networks.
OTHER_CORE_KINDS = frozenset({
    "Service", "ConfigMap", "Secret", "ServiceAccount", "Endpoints", "PersistentVolumeClaim", "PersistentVolume",
    "ReplicationController", "LimitRange", "ResourceQuota", "Event", "Node", "PodTemplate", "Binding",
    "ComponentStatus",
})


@dataclass(frozen=True)
class ManifestError:
    source: str
    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.object}: {self.message}"

    @property
    def kind(self) -> str:
        """The object's kind as far as known (`object` is `Kind ns/name`, `Kind`, `<type>` or `-`)."""
        first = self.object.split(" ", 1)[0]
        return first if first not in ("-", "?") and not first.startswith("<") else "-"


@dataclass(frozen=True)
class RawObject:
    source: str  # file name (and document index) or "api"
    data: Any


MAX_NAME_SHOWN = 253  # a Kubernetes name's longest legal form; longer junk is cut in messages


def _shown(value: Any) -> str | None:
    return value[:MAX_NAME_SHOWN] if isinstance(value, str) and value else None


def describe(obj: Any) -> str:
    """`Kind ns/name` for messages, from whatever of it the object has (never the whole of a bad value)."""
    if not isinstance(obj, dict):
        return f"<{type(obj).__name__}>"
    meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    ns = _shown(meta.get("namespace"))
    return f"{_shown(obj.get('kind')) or '?'} {f'{ns}/' if ns else ''}{_shown(meta.get('name')) or '?'}"


def _labels(meta: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    labels = _mapping(meta.get("labels"), f"{where}.labels")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise InvalidObject(f"{where}.labels.{key}: a label value must be a string, got {type(value).__name__}")
    return tuple(sorted(labels.items()))


# --- NetworkAttachmentDefinition ---------------------------------------------------------------------------

def parse_network(obj: dict[str, Any]) -> Network:
    ref, _ = _metadata(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec")
    raw = spec.get("config")
    if not isinstance(raw, str):
        raise InvalidObject("spec.config: expected a JSON string")
    try:
        config = load_embedded_json(raw)
    except ValueError as exc:
        raise InvalidObject(f"spec.config: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidObject("spec.config: expected a JSON object")
    cni_name = _str(config.get("name"), "spec.config.name")
    subnets = tuple(s.strip() for s in str(config.get("subnets") or "").split(",") if s.strip())
    excludes = tuple(s.strip() for s in str(config.get("excludeSubnets") or "").split(",") if s.strip())
    for cidr in subnets + excludes:
        try:
            ipaddress.ip_network(cidr.split("/", 2)[0] + ("/" + cidr.split("/")[1] if "/" in cidr else ""), strict=False)
        except ValueError:
            raise InvalidObject(f"spec.config.subnets: invalid CIDR {cidr!r}") from None
    vlan = config.get("vlanID")
    if vlan is not None and (isinstance(vlan, bool) or not isinstance(vlan, int) or not 0 <= vlan <= 4094):
        raise InvalidObject(f"spec.config.vlanID: expected 0 (no VLAN) or 1..4094, got {vlan!r}")
    vlan = vlan or None  # OVN-K's own e2e NADs carry 0: untagged
    mtu = config.get("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or mtu < 68):
        raise InvalidObject(f"spec.config.mtu: invalid {mtu!r}")
    nad_name = config.get("netAttachDefName")
    if nad_name is not None and nad_name != str(ref):
        raise InvalidObject(f"spec.config.netAttachDefName is {nad_name!r}, but the object is {ref}")
    return Network(
        ref=ref,
        cni_name=cni_name,
        topology=str(config.get("topology") or ""),
        cni_type=str(config.get("type") or ""),
        subnets=subnets,
        exclude_subnets=excludes,
        vlan_id=vlan,
        mtu=mtu,
        physical_network_name=config.get("physicalNetworkName") or None,
    )


# --- MultiNetworkPolicy ------------------------------------------------------------------------------------

def _parse_peer(raw: Any, where: str) -> Peer:
    data = _mapping(raw, where)
    unknown = set(data) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise InvalidObject(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if not data:
        raise InvalidObject(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    try:
        pod = parse_selector(data["podSelector"], f"{where}.podSelector") if "podSelector" in data else None
        ns = parse_selector(data["namespaceSelector"], f"{where}.namespaceSelector") if "namespaceSelector" in data else None
    except SelectorError as exc:
        raise InvalidObject(str(exc)) from None
    block = None
    if "ipBlock" in data:
        if pod is not None or ns is not None:
            raise InvalidObject(f"{where}: ipBlock cannot be combined with selectors")
        ib = _mapping(data["ipBlock"], f"{where}.ipBlock")
        try:
            cidr = ipaddress.ip_network(_str(ib.get("cidr"), f"{where}.ipBlock.cidr"), strict=False)
        except ValueError:
            raise InvalidObject(f"{where}.ipBlock.cidr: invalid CIDR {ib.get('cidr')!r}") from None
        excepts = []
        for i, ex in enumerate(_list(ib.get("except"), f"{where}.ipBlock.except")):
            try:
                net = ipaddress.ip_network(_str(ex, f"{where}.ipBlock.except[{i}]"), strict=False)
            except ValueError:
                raise InvalidObject(f"{where}.ipBlock.except[{i}]: invalid CIDR {ex!r}") from None
            if net.version != cidr.version or not net.subnet_of(cidr):  # type: ignore[arg-type]
                raise InvalidObject(f"{where}.ipBlock.except[{i}]: {net} is not inside {cidr}")
            excepts.append(net)
        block = IPBlock(cidr, tuple(excepts))
    return Peer(pod, ns, block)


def _parse_port(raw: Any, where: str) -> PortSpec:
    data = _mapping(raw, where)
    unknown = set(data) - {"protocol", "port", "endPort"}
    if unknown:
        raise InvalidObject(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    defaulted = "protocol" not in data or data["protocol"] is None
    protocol = Protocol.TCP if defaulted else _protocol(data["protocol"], f"{where}.protocol")
    port: int | str | None = data.get("port")
    if isinstance(port, str):
        if port.isdigit():
            port = _port_number(int(port), f"{where}.port")
        elif not port or len(port) > 15 or not port.replace("-", "").isalnum() or not port[0].isalnum():
            raise InvalidObject(f"{where}.port: invalid named port {port!r}")
    elif port is not None:
        port = _port_number(port, f"{where}.port")
    end = data.get("endPort")
    if end is not None:
        end = _port_number(end, f"{where}.endPort")
        if not isinstance(port, int):
            raise InvalidObject(f"{where}.endPort needs a numeric port")
        if end < port:
            raise InvalidObject(f"{where}.endPort {end} is below port {port}")
    return PortSpec(protocol, port, end, defaulted)


def _parse_rules(spec: dict[str, Any], direction: Direction) -> tuple[Rule, ...]:
    key, peer_key = ("ingress", "from") if direction is Direction.INGRESS else ("egress", "to")
    rules = []
    for i, raw in enumerate(_list(spec.get(key), f"spec.{key}")):
        where = f"spec.{key}[{i}]"
        data = _mapping(raw, where)
        unknown = set(data) - {peer_key, "ports"}
        if unknown:
            raise InvalidObject(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        peers = tuple(_parse_peer(p, f"{where}.{peer_key}[{j}]") for j, p in enumerate(_list(data.get(peer_key), f"{where}.{peer_key}")))
        ports = tuple(_parse_port(p, f"{where}.ports[{j}]") for j, p in enumerate(_list(data.get("ports"), f"{where}.ports")))
        rules.append(Rule(direction, i, peers, ports))
    return tuple(rules)


def parse_policy(obj: dict[str, Any]) -> Policy:
    ref, meta = _metadata(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec")
    unknown = set(spec) - {"podSelector", "policyTypes", "ingress", "egress"}
    if unknown:
        raise InvalidObject(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
    if "podSelector" not in spec:
        raise InvalidObject("spec.podSelector is required (use {} to select every pod)")
    try:
        selector = parse_selector(spec["podSelector"], "spec.podSelector")
    except SelectorError as exc:
        raise InvalidObject(str(exc)) from None
    types = set()
    for t in _list(spec.get("policyTypes"), "spec.policyTypes"):
        try:
            types.add(Direction(str(t).lower()))
        except ValueError:
            raise InvalidObject(f"spec.policyTypes: invalid {t!r} (Ingress or Egress)") from None
    annotations = _mapping(meta.get("annotations"), "metadata.annotations")
    policy_for = tuple(s.strip() for s in str(annotations.get(POLICY_FOR_ANNOTATION) or "").split(",") if s.strip())
    for item in policy_for:
        try:
            Ref.parse(item, ref.namespace)
        except ValueError as exc:
            raise InvalidObject(f"annotation {POLICY_FOR_ANNOTATION}: {exc}") from None
    return Policy(
        ref=ref,
        pod_selector=selector,
        policy_types=frozenset(types),
        ingress=_parse_rules(spec, Direction.INGRESS),
        egress=_parse_rules(spec, Direction.EGRESS),
        policy_for=policy_for,
        policy_types_declared="policyTypes" in spec,
        api_version=str(obj.get("apiVersion")),
    )


# --- Pods ---------------------------------------------------------------------------------------------------

def _json_annotation(annotations: dict[str, Any], key: str) -> Any:
    raw = annotations.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidObject(f"annotation {key}: expected a string")
    try:
        return load_embedded_json(raw)
    except ValueError as exc:
        raise InvalidObject(f"annotation {key}: {exc}") from None


def _network_selections(annotations: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The `networks` annotation: a JSON list of selections, or the short `ns/name@iface, ...` form."""
    raw = annotations.get(NETWORKS_ANNOTATION)
    if raw is None or raw == "":
        return []
    if not isinstance(raw, str):
        raise InvalidObject(f"annotation {NETWORKS_ANNOTATION}: expected a string")
    if raw.lstrip().startswith("["):
        data = _json_annotation(annotations, NETWORKS_ANNOTATION)
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise InvalidObject(f"annotation {NETWORKS_ANNOTATION}: expected a JSON list of objects")
        return data
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, iface = item.partition("@")
        ns, _, nad = name.rpartition("/")
        out.append({"name": nad, "namespace": ns or namespace, **({"interface": iface} if iface else {})})
    return out


def _interface(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    return _str(value, where)


def parse_pod(obj: dict[str, Any]) -> list[Attachment]:
    """One attachment per network selection; the network-status annotation, once Multus wrote it, gives the
    interface, MAC and every address (both families on a dual-stack network)."""
    ref, meta = _metadata(obj, namespaced=True)
    annotations = _mapping(meta.get("annotations"), "metadata.annotations")
    labels = _labels(meta, "metadata")
    node = _mapping(obj.get("spec"), "spec").get("nodeName")
    kind = AttachmentKind.POD
    found: dict[Ref, Attachment] = {}
    status = _json_annotation(annotations, NETWORK_STATUS_ANNOTATION)
    if status is not None:
        if not isinstance(status, list):
            raise InvalidObject(f"annotation {NETWORK_STATUS_ANNOTATION}: expected a JSON list")
        for i, entry in enumerate(status):
            if not isinstance(entry, dict) or entry.get("default"):
                continue
            where = f"annotation {NETWORK_STATUS_ANNOTATION}[{i}]"
            try:
                net = Ref.parse(_str(entry.get("name"), f"{where}.name"), ref.namespace)
            except ValueError as exc:
                raise InvalidObject(f"{where}: {exc}") from None
            ips = tuple(_ip(x, f"{where}.ips") for x in _list(entry.get("ips"), f"{where}.ips"))
            iface = _interface(entry.get("interface"), f"{where}.interface")
            found[net] = Attachment(kind, ref, net, labels, iface, _mac(entry.get("mac")), ips, node)
    selected: set[Ref] = set()
    for i, sel in enumerate(_network_selections(annotations, ref.namespace)):
        where = f"annotation {NETWORKS_ANNOTATION}[{i}]"
        name = _str(sel.get("name"), f"{where}.name")
        ns = sel.get("namespace") or ref.namespace
        net = Ref.parse(name, ns) if "/" in name else Ref(str(ns), name)
        if net in selected:
            raise InvalidObject(f"{where}: names NAD {net} a second time; OVN-Kubernetes refuses such a pod "
                                "(\"more than one of the same NAD\"), so it does not start")
        selected.add(net)
        if net in found:
            continue
        ips = tuple(_ip(x, f"{where}.ips") for x in _list(sel.get("ips"), f"{where}.ips"))
        iface = _interface(sel.get("interface"), f"{where}.interface") or f"net{i + 1}"  # Multus' default names
        found[net] = Attachment(kind, ref, net, labels, iface, _mac(sel.get("mac")), ips, node)
    return list(found.values())


def _mac(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


# --- KubeVirt -----------------------------------------------------------------------------------------------

def _vm_networks(spec: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(interface name, multus network name) for each multus network of a VM(I) spec."""
    out = []
    for i, net in enumerate(_list(spec.get("networks"), f"{where}.networks")):
        net = _mapping(net, f"{where}.networks[{i}]")
        multus = net.get("multus")
        if isinstance(multus, dict) and multus.get("networkName"):
            out.append((_str(net.get("name"), f"{where}.networks[{i}].name"), str(multus["networkName"])))
    return out


def _interface_macs(spec: dict[str, Any], where: str) -> dict[str, str | None]:
    devices = _mapping(_mapping(spec.get("domain"), f"{where}.domain").get("devices"), f"{where}.domain.devices")
    macs: dict[str, str | None] = {}
    for i, iface in enumerate(_list(devices.get("interfaces"), f"{where}.domain.devices.interfaces")):
        iface = _mapping(iface, f"{where}.domain.devices.interfaces[{i}]")
        if iface.get("name"):
            macs[str(iface["name"])] = _mac(iface.get("macAddress"))
    return macs


def _cloud_init_addresses(spec: dict[str, Any], where: str, parse_yaml: Any) -> list[tuple[str | None, list[IPAddress]]]:
    """(MAC or None, addresses) of each ethernet in cloud-init networkData (netplan v2 or v1), in order."""
    out: list[tuple[str | None, list[IPAddress]]] = []
    for vol in _list(spec.get("volumes"), f"{where}.volumes"):
        if not isinstance(vol, dict):
            continue
        for key in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            source = vol.get(key)
            if not isinstance(source, dict) or not isinstance(source.get("networkData"), str):
                continue
            try:
                data = parse_yaml(source["networkData"])
            except ValueError as exc:
                raise InvalidObject(f"{where}.volumes.{key}.networkData: invalid YAML ({exc})") from None
            if not isinstance(data, dict):
                continue
            if isinstance(data.get("network"), dict):
                data = data["network"]  # cloud-init also accepts the document wrapped in `network:`
            if data.get("version") == 1:
                for entry in _list(data.get("config"), "networkData.config"):
                    if isinstance(entry, dict) and entry.get("type") == "physical":
                        ips = [_ip(s.get("address"), "networkData subnets") for s in entry.get("subnets") or []
                               if isinstance(s, dict) and s.get("address")]
                        out.append((_mac(entry.get("mac_address")), ips))
            else:
                for _name, eth in _mapping(data.get("ethernets"), "networkData.ethernets").items():
                    if not isinstance(eth, dict):
                        continue
                    match: dict[str, Any] = eth["match"] if isinstance(eth.get("match"), dict) else {}
                    ips = [_ip(a, "networkData addresses") for a in _list(eth.get("addresses"), "addresses")]
                    out.append((_mac(match.get("macaddress")), ips))
    return out


def parse_vm(obj: dict[str, Any], parse_yaml: Any) -> list[Attachment]:
    """A VirtualMachine: labels from its template, addresses from cloud-init (VMI status wins when present)."""
    ref, _ = _metadata(obj, namespaced=True)
    template = _mapping(_mapping(obj.get("spec"), "spec").get("template"), "spec.template")
    labels = _labels(_mapping(template.get("metadata"), "spec.template.metadata"), "spec.template.metadata")
    spec = _mapping(template.get("spec"), "spec.template.spec")
    return _vm_attachments(ref, labels, spec, "spec.template.spec", status_ifaces=[], node=None, parse_yaml=parse_yaml)


def parse_vmi(obj: dict[str, Any], parse_yaml: Any) -> list[Attachment]:
    ref, meta = _metadata(obj, namespaced=True)
    spec = _mapping(obj.get("spec"), "spec")
    status = _mapping(obj.get("status"), "status")
    ifaces = [i for i in _list(status.get("interfaces"), "status.interfaces") if isinstance(i, dict)]
    return _vm_attachments(ref, _labels(meta, "metadata"), spec, "spec", ifaces, status.get("nodeName"), parse_yaml)


def _vm_attachments(ref: Ref, labels: tuple[tuple[str, str], ...], spec: dict[str, Any], where: str,
                    status_ifaces: list[dict[str, Any]], node: Any, parse_yaml: Any) -> list[Attachment]:
    macs = _interface_macs(spec, where)
    cloud = _cloud_init_addresses(spec, where, parse_yaml)
    order = list(macs)
    out = []
    multus = _vm_networks(spec, where)
    for iface_name, network_name in multus:
        net = Ref.parse(network_name, ref.namespace)
        mac = macs.get(iface_name)
        ips: tuple[IPAddress, ...] = ()
        st = next((s for s in status_ifaces if s.get("name") == iface_name), None)
        if st is not None:
            mac = _mac(st.get("mac")) or mac
            addrs = st.get("ipAddresses") or ([st["ipAddress"]] if st.get("ipAddress") else [])
            ips = tuple(_ip(a, f"status.interfaces[{iface_name}]") for a in addrs)
        if not ips and cloud:
            by_mac = [c for c in cloud if mac and c[0] == mac]
            if by_mac:
                ips = tuple(by_mac[0][1])
            elif len(multus) == 1 and len([c for c in cloud if c[1]]) == 1:
                ips = tuple(next(c[1] for c in cloud if c[1]))
            elif iface_name in order and order.index(iface_name) < len(cloud):
                ips = tuple(cloud[order.index(iface_name)][1])
        out.append(Attachment(AttachmentKind.VM, ref, net, labels, iface_name, mac, ips, node))
    return out


# --- Namespace and segcheck's own endpoints -----------------------------------------------------------------

def parse_namespace(obj: dict[str, Any]) -> NamespaceInfo:
    ref, meta = _metadata(obj, namespaced=False)
    return NamespaceInfo(ref.name, _labels(meta, "metadata"))


# --- Assembly -----------------------------------------------------------------------------------------------

def _well_shaped(objects: Iterable[RawObject], errors: list[ManifestError]) -> Iterable[RawObject]:
    for raw in objects:
        problem = check_shape(raw.data)
        if problem is None:
            yield raw
        else:
            errors.append(ManifestError(raw.source, describe(raw.data), problem))


def _flatten(objects: Iterable[RawObject], errors: list[ManifestError]) -> list[RawObject]:
    flat = []
    for raw in objects:
        obj = raw.data
        if obj is None:
            continue
        if not isinstance(obj, dict):
            errors.append(ManifestError(raw.source, describe(obj), "expected a Kubernetes object (a mapping)"))
            continue
        kind = obj.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in obj:
            items = obj.get("items")
            if not isinstance(items, list):
                errors.append(ManifestError(raw.source, describe(obj), "items: expected a list"))
                continue
            flat.extend(_flatten((RawObject(f"{raw.source} items[{i}]", item) for i, item in enumerate(items)), errors))
        else:
            flat.append(raw)
    return flat


def flatten_documents(documents: Iterable[RawObject]) -> tuple[list[RawObject], list[ManifestError]]:
    """Documents -> single objects: List kinds opened, documents past the input limits refused."""
    errors: list[ManifestError] = []
    return _flatten(_well_shaped(documents, errors), errors), errors


def build_inventory(objects: Iterable[RawObject], parse_yaml: Any) -> tuple[Inventory, list[ManifestError]]:
    """Parse every document; collect errors per object. `parse_yaml(text)` parses embedded cloud-init YAML
    (passed in so the core imports no YAML library); it must raise ValueError on bad input."""
    flat, errors = flatten_documents(objects)
    inv, more = inventory_from(flat, parse_yaml)
    return inv, errors + more


def inventory_from(flat: Iterable[RawObject], parse_yaml: Any) -> tuple[Inventory, list[ManifestError]]:
    """`build_inventory` for objects already flattened (see flatten_documents)."""
    errors: list[ManifestError] = []
    inv = Inventory()
    vms: dict[Ref, list[Attachment]] = {}
    vmis: dict[Ref, list[Attachment]] = {}
    pods: list[tuple[dict[str, Any], list[Attachment]]] = []
    seen: dict[tuple[str, str], str] = {}
    for raw in flat:
        obj = raw.data
        kind = obj.get("kind")
        try:
            if not isinstance(kind, str) or not kind:
                raise InvalidObject("missing kind")
            key = (kind, describe(obj))
            if key in seen:
                raise InvalidObject(f"defined twice (also in {seen[key]})")
            seen[key] = raw.source
            if kind == "NetworkAttachmentDefinition":
                net = parse_network(obj)
                inv.networks[net.ref] = net
            elif kind == "MultiNetworkPolicy":
                if obj.get("apiVersion") not in MNP_API_VERSIONS:
                    raise InvalidObject(f"apiVersion must be one of {', '.join(MNP_API_VERSIONS)}")
                inv.policies.append(parse_policy(obj))
            elif kind == "Pod":
                pods.append((obj, parse_pod(obj)))
            elif kind == "VirtualMachine":
                ref = _metadata(obj, namespaced=True)[0]
                vms[ref] = parse_vm(obj, parse_yaml)
            elif kind == "VirtualMachineInstance":
                ref = _metadata(obj, namespaced=True)[0]
                vmis[ref] = parse_vmi(obj, parse_yaml)
            elif kind == "Namespace":
                ns = parse_namespace(obj)
                inv.namespaces[ns.name] = ns
            elif kind == ENDPOINTS_KIND:
                add_endpoints(inv.externals, parse_endpoints(obj))
            elif kind == EXTERNAL_ENDPOINT_KIND:
                add_endpoints(inv.externals, [parse_external_endpoint(obj)])
            elif kind != CHECKED_ON_NODES:
                inv.skipped.append(_skipped(raw.source, obj, kind))
        except InvalidObject as exc:
            errors.append(ManifestError(raw.source, describe(obj), str(exc)))
        except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
            # A shape no check above anticipated: still a bad object, never a crash.
            errors.append(ManifestError(raw.source, describe(obj), f"malformed object ({type(exc).__name__}: {exc})"))
    inv.attachments.extend(_merge_vms(vms, vmis))
    vm_refs = {a.ref for a in inv.attachments}
    for obj, attachments in pods:
        if _launcher_of(obj) in vm_refs:
            continue  # the VM is the workload; its virt-launcher pod only carries it
        inv.attachments.extend(attachments)
    _join_networks(inv)
    inv.attachments.sort(key=lambda a: (a.network, a.ref, a.interface or ""))
    return inv, errors


def _join_networks(inv: Inventory) -> None:
    """NADs of one CNI name are one network, keyed by its first NAD; attachments and endpoints move onto
    that key (keeping the NAD they named), and a workload attached several times is several endpoints."""
    inv.nads = dict(sorted(inv.networks.items()))
    groups: dict[tuple[str, str], list[Network]] = {}
    for net in inv.nads.values():
        groups.setdefault(net.identity, []).append(net)
    inv.networks = {nets[0].ref: replace(nets[0], nads=tuple(n.ref for n in nets)) for nets in groups.values()}
    key_of = {nad: key for nad, key in ((nad, inv.network_of(nad)) for nad in inv.nads) if key is not None and key != nad}
    attachments = [replace(a, network=key_of[a.network], nad=a.network) if a.network in key_of else a
                   for a in inv.attachments]
    per_network = Counter((a.ref, a.kind, a.network) for a in attachments)
    inv.attachments = [replace(a, one_of_several=True) if per_network[(a.ref, a.kind, a.network)] > 1 else a
                       for a in attachments]
    inv.externals = [replace(e, network=key_of[e.network]) if e.network in key_of else e for e in inv.externals]


def _skipped(source: str, obj: dict[str, Any], kind: str) -> SkippedObject:
    """A kind segcheck does not read, if it is a well-formed object of a real API; else why it is refused."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise InvalidObject(f"kind {kind!r} without an apiVersion")
    group = api_version.rpartition("/")[0]
    if group in MODELLED_GROUPS or (not group and kind not in OTHER_CORE_KINDS):
        raise InvalidObject(f"unsupported kind {kind!r} in {api_version}")
    return SkippedObject(source, kind, _metadata(obj, namespaced="namespace" in _mapping(obj.get("metadata"), "metadata"))[0])


def _merge_vms(vms: dict[Ref, list[Attachment]], vmis: dict[Ref, list[Attachment]]) -> list[Attachment]:
    """A VMI is the running VM: its labels and status win; addresses fall back to the VM's cloud-init."""
    out = []
    for ref in sorted(set(vms) | set(vmis)):
        from_vm = {a.network: a for a in vms.get(ref, [])}
        for att in vmis.get(ref, []):
            fallback = from_vm.pop(att.network, None)
            if not att.ips and fallback is not None:
                att = Attachment(att.kind, att.ref, att.network, att.labels, att.interface,
                                 att.mac or fallback.mac, fallback.ips, att.node)
            out.append(att)
        if ref not in vmis:
            out.extend(from_vm.values())
    return out


def _launcher_of(pod: dict[str, Any]) -> Ref | None:
    meta: dict[str, Any] = pod["metadata"] if isinstance(pod.get("metadata"), dict) else {}
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    if labels.get("kubevirt.io") != "virt-launcher":
        return None
    name = labels.get("vm.kubevirt.io/name") or next(
        (o.get("name") for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("kind") == "VirtualMachineInstance"),
        None,
    )
    return Ref(meta.get("namespace", "default"), name) if name else None

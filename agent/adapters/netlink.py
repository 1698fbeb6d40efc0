"""Just enough rtnetlink to follow a veth to its peer: the links of a namespace (index, name, MAC, peer index,
peer's namespace id, master, kind) and the id a namespace gives another one (RTM_GETNSID).

A netlink socket answers for the namespace it was created in, so each socket is opened inside its namespace
(`netns.open_socket`) and used from the calling thread.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from .netns import open_socket

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWNSID, RTM_GETNSID = 16, 18, 88, 90
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_LINK_NETNSID = 1, 3, 5, 10, 18, 37
IFLA_INFO_KIND = 1
NETNSA_NSID, NETNSA_FD = 1, 3
_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_RTA = struct.Struct("=HH")
_RECV_BYTES = 1 << 16
_TIMEOUT = 5.0


class NetlinkError(OSError):
    """The kernel refused a request, or answered something we cannot read."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str | None
    peer_index: int | None = None  # IFLA_LINK: a veth's peer (in the namespace `peer_netnsid` names, if set)
    peer_netnsid: int | None = None  # the peer's namespace, as an id of the namespace this link is in
    master: int | None = None  # the bridge it is enslaved to
    kind: str | None = None  # "veth", "bridge", ...


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + _RTA.size <= len(data):
        length, kind = _RTA.unpack_from(data, offset)
        if length < _RTA.size:
            break
        out[kind & 0x3FFF] = data[offset + _RTA.size:offset + length]  # without the NESTED/BYTEORDER flags
        offset += _align(length)
    return out


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _RTA.pack(_RTA.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _request(sock: socket.socket, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
    """Send one request; every answer message (type, payload) until the dump ends or the ack comes."""
    seq = 1
    sock.send(_NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body)
    answers: list[tuple[int, bytes]] = []
    while True:
        data = sock.recv(_RECV_BYTES)
        if not data:
            raise NetlinkError("netlink socket closed")
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, mtype, _flags, mseq, _pid = _NLMSG.unpack_from(data, offset)
            if length < _NLMSG.size:
                raise NetlinkError("truncated netlink message")
            payload = data[offset + _NLMSG.size:offset + length]
            offset += _align(length)
            if mseq != seq:
                continue
            if mtype == NLMSG_DONE:
                return answers
            if mtype == NLMSG_ERROR:
                code = struct.unpack_from("=i", payload)[0]
                if code:
                    raise NetlinkError(-code, os.strerror(-code))
                return answers
            answers.append((mtype, payload))
            if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                return answers


def _route_socket(netns: str) -> socket.socket:
    sock = open_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    sock.settimeout(_TIMEOUT)
    return sock


def _i32(raw: bytes | None) -> int | None:
    return struct.unpack("=i", raw[:4])[0] if raw is not None and len(raw) >= 4 else None


def _parse_link(payload: bytes) -> Link:
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(payload)
    attrs = _attrs(payload, _IFINFO.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    mac_raw = attrs.get(IFLA_ADDRESS)
    mac = mac_raw.hex(":") if mac_raw is not None and len(mac_raw) == 6 else None
    peer = _i32(attrs.get(IFLA_LINK))
    info = _attrs(attrs[IFLA_LINKINFO]) if IFLA_LINKINFO in attrs else {}
    kind = info[IFLA_INFO_KIND].split(b"\0", 1)[0].decode() if IFLA_INFO_KIND in info else None
    return Link(index, name, mac, peer if peer else None, _i32(attrs.get(IFLA_LINK_NETNSID)),
                _i32(attrs.get(IFLA_MASTER)) or None, kind)


def links(netns: str) -> dict[int, Link]:
    """Every link of a namespace, by index."""
    with _route_socket(netns) as sock:
        answers = _request(sock, RTM_GETLINK, NLM_F_DUMP, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
    found = [_parse_link(payload) for mtype, payload in answers if mtype == RTM_NEWLINK]
    return {link.index: link for link in found}


def namespace_ids(netns: str, others: list[str]) -> dict[str, int]:
    """The id namespace `netns` has for each of `others` (paths); namespaces it has no id for are left out."""
    found: dict[str, int] = {}
    with _route_socket(netns) as sock:
        for path in others:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue  # a process that exited meanwhile
            try:
                body = struct.pack("=Bxxx", socket.AF_UNSPEC) + _attr(NETNSA_FD, struct.pack("=I", fd))
                answers = _request(sock, RTM_GETNSID, 0, body)
            except NetlinkError:
                continue
            finally:
                os.close(fd)
            for mtype, payload in answers:
                nsid = _i32(_attrs(payload, 4).get(NETNSA_NSID)) if mtype == RTM_NEWNSID else None
                if nsid is not None and nsid >= 0:
                    found[path] = nsid
    return found

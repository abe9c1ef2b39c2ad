"""The outbound address guard (SSRF): every connection to a model backend is judged on the address
it actually connects to, after DNS, and is made to exactly that address.

    always refused     cloud metadata (169.254.169.254, fd00:ec2::/32, 100.100.100.200, ...;
                       metadata.google.internal, metadata, instance-data), link-local (169.254/16,
                       fe80::/10), unspecified (0.0.0.0/8, ::), multicast, broadcast, reserved
    refused by policy  loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, 100.64/10,
                       fc00::/7), and any `denied_networks`
    IPv4 inside IPv6   mapped (::ffff:0:0/96), 6to4 (2002::/16), NAT64 (64:ff9b::/96), Teredo
                       (2001::/32): the IPv4 address they carry is judged as well

A host is resolved once (`socket.getaddrinfo`) and the socket connects to an address of that very
answer, never to the name again, so a second lookup (DNS rebinding) cannot swap the address. TLS
still sends SNI for, and verifies, the host name: only the socket is ours. Every hop of a redirect
opens its connection here too. `session()` in http.py mounts `GuardedAdapter` for http and https.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
Resolver = Callable[[str, int, int, int], Sequence[AddrInfo]]

# Names of the cloud metadata services, refused before any lookup (compared without trailing dots).
METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
)

_METADATA = "cloud metadata addresses are never allowed"
_LOOPBACK = "loopback"
_PRIVATE = "private"
_NAT64_PREFIX = "nat64"  # judged by the IPv4 address it carries
# The first matching range names what an address is; more specific ranges come first.
_RANGES: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(network), what)
    for network, what in (
        ("169.254.169.254/32", _METADATA),  # AWS, GCP, Azure, OpenStack, Oracle...
        ("169.254.170.2/32", _METADATA),  # AWS ECS task metadata
        ("fd00:ec2::/32", _METADATA),  # AWS's IPv6 instance services (metadata ::254, DNS ::23)
        ("100.100.100.200/32", _METADATA),  # Alibaba Cloud
        ("192.0.0.192/32", _METADATA),  # Oracle Cloud (classic)
        # Connecting to 0.0.0.0 or :: reaches this very host.
        ("0.0.0.0/8", "unspecified addresses are never allowed"),
        ("::/128", "unspecified addresses are never allowed"),
        ("127.0.0.0/8", _LOOPBACK),
        ("::1/128", _LOOPBACK),
        ("169.254.0.0/16", "link-local addresses are never allowed"),
        ("fe80::/10", "link-local addresses are never allowed"),
        ("224.0.0.0/4", "multicast addresses are never allowed"),
        ("ff00::/8", "multicast addresses are never allowed"),
        ("255.255.255.255/32", "broadcast addresses are never allowed"),
        ("240.0.0.0/4", "reserved addresses are never allowed"),
        ("64:ff9b::/96", _NAT64_PREFIX),
        ("64:ff9b:1::/48", _NAT64_PREFIX),  # local-use NAT64
        ("::/8", "reserved addresses are never allowed"),  # IPv4-compatible and -translated
        ("100::/64", "reserved addresses are never allowed"),  # discard-only
        ("fec0::/10", "reserved addresses are never allowed"),  # site-local, deprecated
        ("10.0.0.0/8", _PRIVATE),
        ("172.16.0.0/12", _PRIVATE),
        ("192.168.0.0/16", _PRIVATE),
        ("100.64.0.0/10", _PRIVATE),  # carrier-grade NAT
        ("fc00::/7", _PRIVATE),  # unique local
    )
)
_NAT64 = tuple(network for network, what in _RANGES if what == _NAT64_PREFIX)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What may be connected to besides public addresses. Hashable: sessions are cached by it."""

    allow_loopback: bool = True
    allow_private: bool = True
    denied_networks: tuple[Network, ...] = ()


DEFAULT_POLICY = AddressPolicy()


class ForbiddenAddress(OSError):
    """A connection the policy refuses; its text is a message for the user. An OSError, so that
    urllib3 reports it as a NewConnectionError caused by it."""


# --- the decision -----------------------------------------------------------------------------


def _embedded(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a 6to4, Teredo or NAT64 address leads to."""
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo  # (server, client)
    if any(address in network for network in _NAT64):  # the RFC 6052 /96 layout
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def _judge(address: Address, policy: AddressPolicy) -> str | None:
    what = next((w for network, w in _RANGES if address in network), None)
    if what is not None and what not in (_LOOPBACK, _PRIVATE, _NAT64_PREFIX):
        return what
    for network in policy.denied_networks:
        if address in network:
            return f"{network} is denied on this server"
    if what == _LOOPBACK and not policy.allow_loopback:
        return "loopback addresses are not allowed on this server"
    if what == _PRIVATE and not policy.allow_private:
        return "private network addresses are not allowed on this server"
    return None


def refusal(address: Address, policy: AddressPolicy) -> str | None:
    """Why connecting to `address` is refused, or None when it is allowed."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # on the wire, this is the IPv4 address
            return _judge(address.ipv4_mapped, policy)
        for inner in _embedded(address):
            reason = _judge(inner, policy)
            if reason is not None:
                return f"{reason} (it leads to {inner})"
    return _judge(address, policy)


def normalized(host: str) -> str:
    """A URL's host as judged: no IPv6 brackets, no trailing dots, lower case."""
    return host.strip("[]").rstrip(".").lower()


def name_refusal(host: str) -> str | None:
    if normalized(host) in METADATA_NAMES:
        return "cloud metadata host names are never allowed"
    return None


def literal_address(host: str) -> Address | None:
    """The address `host` spells without any lookup, in every form the C resolver accepts
    (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`, `0`...), else None."""
    text = normalized(host).split("%", 1)[0]  # an IPv6 zone names an interface, not an address
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def host_refusal(host: str, policy: AddressPolicy) -> str | None:
    """The early check of a URL's host, without DNS: a metadata name or a refused literal
    address. Names that resolve to a refused address are caught when connecting."""
    reason = name_refusal(host)
    if reason is None and (address := literal_address(host)) is not None:
        reason = refusal(address, policy)
    return reason


# --- resolving and connecting -----------------------------------------------------------------


def _shown(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # what it is on the wire
    return str(address)


def resolve(
    host: str,
    port: int,
    policy: AddressPolicy,
    *,
    family: int = socket.AF_UNSPEC,
    resolver: Resolver = socket.getaddrinfo,
) -> list[AddrInfo]:
    """The allowed addresses of `host`, from one lookup; ForbiddenAddress when there are none
    (socket.gaierror when the name does not resolve)."""
    name = host.strip("[]")
    shown = name.rstrip(".") or name
    reason = name_refusal(name)
    if reason is not None:
        raise ForbiddenAddress(f"Refused to connect to {shown}: {reason}.")
    allowed: list[AddrInfo] = []
    refused: list[tuple[str, str]] = []
    for info in resolver(name, port, family, socket.SOCK_STREAM):
        af, sockaddr = info[0], info[4]
        if af not in (socket.AF_INET, socket.AF_INET6):
            refused.append((str(sockaddr), "only IPv4 and IPv6 addresses are allowed"))
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        reason = refusal(address, policy)
        if reason is None:
            allowed.append(info)
        else:
            refused.append((_shown(address), reason))
    if allowed:
        return allowed
    if refused:
        address_text, reason = refused[0]
        where = shown if address_text == shown else f"{shown} ({address_text})"
        raise ForbiddenAddress(f"Refused to connect to {where}: {reason}.")
    raise OSError("getaddrinfo returns an empty list")


def connect(
    address: tuple[str, int],
    timeout: Any = _DEFAULT_TIMEOUT,
    *,
    policy: AddressPolicy,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
    resolver: Resolver = socket.getaddrinfo,
) -> socket.socket:
    """urllib3's `create_connection`, guarded: resolve once, judge, connect to a judged address."""
    host, port = address
    failure: OSError | None = None
    for af, socktype, proto, _, sockaddr in resolve(
        host, port, policy, family=allowed_gai_family(), resolver=resolver
    ):
        sock = None
        try:
            sock = socket.socket(af, socktype, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            failure = exc
            if sock is not None:
                sock.close()
    raise failure or OSError("getaddrinfo returns an empty list")


def forbidden_in(exc: BaseException) -> ForbiddenAddress | None:
    """The guard's refusal behind a urllib3 error (a MaxRetryError whose `reason` is a
    NewConnectionError caused by the refusal), if any."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ForbiddenAddress):
            return current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [a for a in current.args if isinstance(a, BaseException)]
        pending += [e for e in linked if isinstance(e, BaseException)]
    return None


# --- urllib3 wiring ---------------------------------------------------------------------------


class _Guarded:
    """`_new_conn` of urllib3 2.x's HTTPConnection, with `connect` in place of
    `create_connection`: same errors, same audit event."""

    policy: AddressPolicy

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            sock = connect(
                (conn._dns_host, conn.port),
                conn.timeout,
                policy=self.policy,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except socket.gaierror as e:
            raise NameResolutionError(conn.host, conn, e) from e
        except TimeoutError as e:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from e
        except OSError as e:  # ForbiddenAddress included: it becomes this error's __cause__
            raise NewConnectionError(conn, f"Failed to establish a new connection: {e}") from e
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    def __init__(self, *args: Any, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    def __init__(self, *args: Any, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedPoolManager(PoolManager):
    def __init__(self, *args: Any, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        # The policy reaches each connection through the pool's connection keywords; it is kept
        # out of the pool key, whose fields are fixed (one manager serves one policy anyway).
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["policy"] = self.policy
        return super()._new_pool(scheme, host, port, request_context=context)

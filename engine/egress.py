"""Where pushes may go: the push egress policy.

Tenants choose their subscribers' URLs, so without a policy a push queue reaches whatever the
server can: the cloud's metadata service (169.254.169.254), the private network, the server's
own loopback ports. By default a push may connect only to global unicast addresses; an operator
allows more with ``--push-allow`` (networks in CIDR notation, or host names).

The check runs on the address a connection is actually made to, when it is made: the host is
resolved once, each resolved address is checked (an IPv4-mapped, 6to4 or NAT64 IPv6 address by
the IPv4 address inside it), and the connection goes to an allowed address itself, never to the
name again. So no spelling of an address (``0x7f.1``, ``2130706433``, ``[::ffff:127.0.0.1]``) and
no DNS answer that changes between a check and a connect (DNS rebinding) gets past it. It runs
per connection (httpcore's network backend), not per request: a pooled connection was checked
when it was opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses to try, in order."""

_HOST = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\Z")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(httpcore.ConnectError):
    """A push connection the policy refuses (httpx reports it as a ConnectError caused by this)."""


@dataclass(frozen=True)
class EgressPolicy:
    """Allowed beyond the global unicast addresses: ``networks``, and any address of ``hosts``
    (names as they appear in subscriber URLs)."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> EgressPolicy:
        """From ``--push-allow`` values: a network (``10.0.0.0/8``, ``::1``) or a host name each.
        ValueError names a value that is neither."""
        networks, hosts = [], set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                host = host_key(entry)
                if not _HOST.match(host):
                    raise ValueError(f"push allow: {entry!r} is neither a network (CIDR) nor a host name") from None
                hosts.add(host)
        return cls(tuple(networks), frozenset(hosts))

    def refusal(self, host: str, address: str) -> str | None:
        """Why a push to ``host`` may not connect to ``address`` (one it resolved to), or None."""
        if host_key(host) in self.hosts:
            return None
        ip = plain(ipaddress.ip_address(address.partition("%")[0]))
        if any(ip in network for network in self.networks if network.version == ip.version):
            return None
        kind = special(ip)
        return None if kind is None else f"{ip} is a {kind} address"


def host_key(host: str) -> str:
    return host.lower().rstrip(".")


def plain(ip: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it is (what a connection reaches)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def special(ip: Address) -> str | None:
    """What makes ``ip`` no place for a push by default, or None for a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in embedded_ipv4(ip):
            kind = special(inner)
            if kind is not None:
                return f"{kind} (inside {ip})"
    for kind in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: 6to4, Teredo's client, NAT64's well-known prefix."""
    found = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.append(ip.teredo[1])
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives (every spelling of an IPv4 address it accepts included)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the policy in front: resolve, check, connect to the
    checked address."""

    def __init__(self, policy: EgressPolicy, resolve: Resolve = system_resolve,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await self._allowed(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address, if any (IPv6 then IPv4...)
                failure = exc
        assert failure is not None
        raise failure

    async def _allowed(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            async with asyncio.timeout(timeout):
                resolved = await self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"cannot resolve {host} in time") from exc
        allowed, refusals = [], []
        for address in resolved:
            refusal = self.policy.refusal(host, address)
            if refusal is None:
                allowed.append(str(plain(ipaddress.ip_address(address.partition("%")[0]))))
            else:
                refusals.append(refusal)
        if not allowed:
            raise EgressRefused(f"refused by the push egress policy: {'; '.join(refusals) or f'{host} has no address'}"
                                " (an operator may allow it with --push-allow)")
        return allowed

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("refused by the push egress policy: no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class EgressTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over ``EgressBackend``. httpx takes no network backend, so the
    connection pool it built is replaced by one with ours, configured the same way."""

    def __init__(self, backend: EgressBackend, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

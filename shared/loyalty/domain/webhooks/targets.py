"""Where webhooks may be sent (SSRF guard), checked at subscription and again at delivery.

Outside the local stack a target must be https and every address its host resolves to
must be public: no private, loopback, link-local (which holds the instance metadata
address 169.254.169.254), multicast, reserved or unspecified address, nor the IPv6
metadata address. The local stack also allows http and loopback, never metadata.
Delivery connects to the checked address itself, so a DNS answer that changes between
the check and the connection cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from loyalty.domain.errors import ValidationFailed, field_error

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_PATH_SAFE = "/?@!$&'()*+,;=:%-._~"  # RFC 3986 path and query characters, and escapes
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeTarget(ValidationFailed):
    """The URL is not an allowed webhook target; names the `url` field."""

    def __init__(self, message: str, field: str = "url") -> None:
        base = field_error(field, message)
        super().__init__(base.message, base.details["fields"])


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for Host and TLS server name)
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # checked addresses, connect to one of these


def system_resolver(host: str, port: int) -> list[str]:
    infos: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, IPv4-compatible):
    each must pass the check too, or 2002:a9fe:a9fe:: would reach 169.254.169.254."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_allowed(address: IpAddress, allow_loopback: bool = False) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        elif not all(address_allowed(v4, allow_loopback) for v4 in embedded_ipv4(address)):
            return False
    if address in METADATA_ADDRESSES:
        return False
    if address.is_loopback:
        return allow_loopback
    return bool(
        address.is_global
        and not (
            address.is_private
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
    )


def check_target(
    url: str,
    *,
    local_stack: bool = False,
    resolve: Resolver | None = None,
    refused_ports: frozenset[int] = frozenset(),
) -> Target:
    """The parsed, resolved target; raises UnsafeTarget (422 on `url`) when refused.

    `refused_ports`: loopback ports that are the service itself (the local stack's API and
    AWS endpoint), so a webhook cannot loop back into the stack.
    """
    resolve = resolve or system_resolver  # looked up per call: tests swap in a fake DNS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget("is not a valid URL") from exc
    allowed_schemes = ("https", "http") if local_stack else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget("must use https")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("must name a host")
    if parts.username or parts.password:
        raise UnsafeTarget("must not carry credentials")
    try:
        # The Host header and the TLS name are ASCII: an international name is sent as punycode.
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeTarget("is not a valid host name") from exc
    port = port or (443 if parts.scheme == "https" else 80)
    if local_stack and port in refused_ports:
        raise UnsafeTarget("is the local stack itself; a webhook may not call back into it")
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTarget("host does not resolve") from exc
        if not found:
            raise UnsafeTarget("host does not resolve")
    for raw in found:
        address = ipaddress.ip_address(raw.split("%", 1)[0])  # drop an IPv6 zone id
        if not address_allowed(address, allow_loopback=local_stack):
            raise UnsafeTarget("resolves to a private, loopback, link-local or reserved address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # The request line carries the path as is: spaces, controls and non-ASCII are escaped
    # (escapes already there are kept), so it can never split the request.
    path = quote(path, safe=_PATH_SAFE)
    return Target(parts.scheme, host, port, path, tuple(found))

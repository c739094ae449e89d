"""URLs that come from the CMS are checked before any request is made with them.

A dealer's CMS document is edited by people and systems outside this project; a URL in it must not turn
a worker into a proxy for the internal network (SSRF). :func:`check_base_url` vets a base URL the project
will connect to (Dealer.com ``dealer_com_config.base_url``):

- https only, with a host, no user-info (``user:pass@``), no query and no fragment;
- its host resolves only to public addresses: no loopback, private, shared (CGNAT), link-local, reserved,
  unspecified or multicast address, and never a cloud metadata endpoint (``169.254.169.254``,
  ``fd00:ec2::254``) — every address the name resolves to is checked;
- except hosts in the allowlist (setting ``[od_scheduler] url_allowlist``: ``host`` or ``host:port``),
  which may be anything and may use plain http (the local sandbox on 127.0.0.1).

The refusal is a ``ConfigError`` naming the dealer and the field, raised before any connection. The
connection itself is checked again (:func:`peer_checker`): DNS may answer differently a moment later.

:func:`check_start_url` checks the shape only (https, a host, no user-info): web-scraping ``start_urls``
are handed to Apify, never fetched by us.

No Airflow imports.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from od_scheduler.exceptions import ConfigError, TransientUpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

#: Cloud metadata endpoints (AWS, GCP, Azure use the IPv4 one; AWS Nitro also the IPv6 one).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class AllowedHost:
    """One allowlist entry: a host name or address, and optionally one port."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        """Whether ``host``:``port`` is this entry."""
        return self.host == host and (self.port is None or self.port == port)


def parse_allowlist(entries: Collection[str] | str) -> tuple[AllowedHost, ...]:
    """``["127.0.0.1", "sandbox:8000", "[::1]:9000"]`` (or the comma-separated text) as entries.

    An entry that is not ``host`` or ``host:port`` is a ``ConfigError`` naming the setting.
    """
    if isinstance(entries, str):
        entries = [e for e in entries.split(",")]
    parsed = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            parts = urlsplit(f"//{entry}")
            host, port = parts.hostname, parts.port
        except ValueError as err:
            raise ConfigError(
                f"[od_scheduler] url_allowlist: {entry!r} is not host or host:port ({err})"
            ) from err
        if not host or parts.path or parts.query or parts.fragment or parts.username is not None:
            raise ConfigError(f"[od_scheduler] url_allowlist: {entry!r} is not host or host:port")
        parsed.append(AllowedHost(host.lower().rstrip("."), port))
    return tuple(parsed)


def address_problem(address: IPAddress) -> str | None:
    """Why connecting to ``address`` is refused (``"loopback"``, ``"private"``, ...), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    for attribute, name in (
        ("is_loopback", "loopback"),
        ("is_unspecified", "unspecified"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, attribute):
            return name
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, ...
        return "not public"
    return None


def _who(dealer: str, field: str) -> str:
    return f"dealer {dealer}: {field}"


def _split(url: str, *, dealer: str, field: str) -> SplitResult:
    who = _who(dealer, field)
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{who} is empty. Fix the dealer's configuration in the CMS.")
    if len(url) > _MAX_URL_CHARS or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        raise ConfigError(
            f"{who} is not a URL (too long, or it contains blanks or control characters). "
            "Fix the dealer's configuration in the CMS."
        )
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError as err:
        raise ConfigError(f"{who} {url[:100]!r} is not a valid URL ({err}). Fix it in the CMS.") from err
    return parts


def _check_shape(
    parts: SplitResult, url: str, *, dealer: str, field: str, allowlist: Sequence[AllowedHost], base: bool
) -> tuple[str, int, bool]:
    """(host, port, allowlisted) after the shape checks; ``ConfigError`` naming what is wrong."""
    who = _who(dealer, field)
    shown = _shown(parts)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigError(
            f"{who} {shown!r} must be an absolute https URL with a host name. Fix it in the CMS."
        )
    port = parts.port or _DEFAULT_PORTS[scheme]
    allowed = any(entry.matches(host, port) for entry in allowlist)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"{who} {shown!r} carries user-info (user:password@host): credentials never belong in a CMS "
            "URL. Fix it in the CMS."
        )
    if scheme != "https" and not allowed:
        raise ConfigError(
            f"{who} {shown!r} is not https: only https URLs are used (plain http only for hosts in "
            "[od_scheduler] url_allowlist). Fix it in the CMS."
        )
    if base and (parts.query or parts.fragment or url.strip().endswith(("?", "#"))):
        raise ConfigError(
            f"{who} {shown!r} has a query string or fragment; a base URL is scheme, host and path only. "
            "Fix it in the CMS."
        )
    return host, port, allowed


def _shown(parts: SplitResult) -> str:
    """The URL as messages show it: user-info and query values never echoed."""
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    query = "?…" if parts.query else ""
    fragment = "#…" if parts.fragment else ""
    userinfo = "***@" if "@" in parts.netloc else ""
    return f"{parts.scheme}://{userinfo}{host}{port}{parts.path[:200]}{query}{fragment}"


def resolve_addresses(host: str, port: int, resolver: Resolver = socket.getaddrinfo) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal is itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]").split("%", 1)[0])]
    except ValueError:
        pass
    infos = resolver(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        literal = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(literal)
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_base_url(
    url: str,
    *,
    dealer: str,
    field: str,
    allowlist: Collection[str] | str = (),
    resolver: Resolver = socket.getaddrinfo,
) -> str:
    """``url`` (stripped, without a trailing slash) once it passed every check of the module docstring.

    ``dealer`` and ``field`` name where the URL came from in the ``ConfigError``. A host that does not
    resolve raises ``TransientUpstreamError`` (DNS may be down for a moment). ``resolver`` is
    ``socket.getaddrinfo``'s signature, injectable in tests.
    """
    text = url.strip() if isinstance(url, str) else url
    if isinstance(text, str) and text and "://" not in text:
        text = f"https://{text.lstrip('/')}"  # CMS configs often hold "www.dealer-site.com"
    parts = _split(text, dealer=dealer, field=field)
    entries = parse_allowlist(allowlist)
    host, port, allowed = _check_shape(parts, text, dealer=dealer, field=field, allowlist=entries, base=True)
    if not allowed:
        check_host(host, port, dealer=dealer, field=field, resolver=resolver, shown=_shown(parts))
    return text.rstrip("/")


def check_host(
    host: str, port: int, *, dealer: str, field: str, resolver: Resolver = socket.getaddrinfo, shown: str = ""
) -> None:
    """Refuse ``host`` unless every address it resolves to is public (see :func:`address_problem`)."""
    who = _who(dealer, field)
    try:
        addresses = resolve_addresses(host, port, resolver)
    except (OSError, UnicodeError, ValueError) as err:
        raise TransientUpstreamError(
            f"{who}: the host {host!r} could not be resolved ({type(err).__name__}: {err}); nothing was "
            "requested. If the name is right, DNS may be failing; else fix it in the CMS."
        ) from err
    if not addresses:
        raise TransientUpstreamError(
            f"{who}: the host {host!r} resolved to no address; nothing was requested."
        )
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            raise ConfigError(
                f"{who} {shown or host!r} points at {address} ({problem} address); refused before any "
                "connection. CMS URLs may only reach public hosts; a host that must be reached anyway "
                "(a local sandbox) belongs in [od_scheduler] url_allowlist."
            )


def peer_checker(
    *, dealer: str, field: str, allowlist: Collection[str] | str = ()
) -> Callable[[str, IPAddress], None]:
    """A ``peer_check`` for :class:`~od_scheduler.clients.bounded.DeadlineBackend`: the address really
    connected to must be public too (unless the host is allowlisted), whatever DNS answers later."""
    entries = parse_allowlist(allowlist)

    def check(host: str, address: IPAddress) -> None:
        name = host.lower().rstrip(".").strip("[]")
        if any(entry.host == name for entry in entries):
            return
        problem = address_problem(address)
        if problem is not None:
            raise ConfigError(
                f"{_who(dealer, field)}: host {name!r} connected to {address} ({problem} address); refused. "
                "CMS URLs may only reach public hosts (see [od_scheduler] url_allowlist)."
            )

    return check


def check_start_url(url: str, *, dealer: str, field: str, allowlist: Collection[str] | str = ()) -> str:
    """``url`` stripped, once its shape is right: https (http only for allowlisted hosts), a host, no
    user-info. No DNS: start URLs are only handed to Apify."""
    parts = _split(url, dealer=dealer, field=field)
    _check_shape(parts, url, dealer=dealer, field=field, allowlist=parse_allowlist(allowlist), base=False)
    return url.strip()

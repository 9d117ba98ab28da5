"""Fetches remote image URLs for the `ImageFetcher` port, without SSRF (OWASP A10).

A tenant whose content policy allows remote image URLs has the gateway fetch them, which makes the
gateway a client that callers aim: at the instance metadata service (169.254.169.254), at VPC
endpoints, at localhost. So:

* only `http` and `https`, only ports 80 and 443 (by default), no credentials in the URL;
* the host is resolved once (getaddrinfo) and refused if ANY address it resolves to is not a public
  unicast address (private, loopback, link-local, multicast, reserved, unspecified, shared/CGNAT,
  IPv4 inside IPv6 as mapped, 6to4 or Teredo addresses is checked as IPv4 too);
* the connection goes to the vetted address itself, so the name cannot resolve elsewhere between
  the check and the connect (DNS rebinding); the `Host` header and TLS SNI/certificate check use the
  name, so virtual hosts and HTTPS work as usual;
* redirects are followed only up to `max_redirects`, each target vetted the same way, never from
  https down to http;
* one time limit for everything (name lookup, connect, TLS, headers, body, redirects), enforced by
  a timer that closes the socket, so a server that trickles bytes cannot hold the request;
* the body is read in chunks and abandoned past `max_bytes`; the `Content-Type` must be an image
  type (the caller checks it against the bytes' magic numbers).

Every failure is an `ImageFetchError` whose reason names what was wrong, never the URL, the
addresses or anything the server sent. Nothing is fetched at import.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urljoin, urlsplit

from llmops.domain.images import FetchedImage, ImageFetchError, media_type_of

__all__ = [
    "DEFAULT_PORTS",
    "HttpImageFetcher",
    "IPAddress",
    "Resolver",
    "is_public_address",
    "system_resolver",
    "vet_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> every address the name resolves to (as strings, in getaddrinfo's order)
Resolver = Callable[[str, int], Sequence[str]]
DEFAULT_PORTS: Final = frozenset({80, 443})
_CHUNK = 65_536
_USER_AGENT = "llmops-gateway-image-fetch/1"
# 6to4 and Teredo embed an IPv4 address that the packets end up at; checked as that address.
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Refused whatever this Python's `ipaddress` tables say (they gained entries across versions).
_ALSO_REFUSED: Final = (
    ipaddress.IPv4Network("0.0.0.0/8"),
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv4Network("198.18.0.0/15"),
    ipaddress.IPv4Network("240.0.0.0/4"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fc00::/7"),
    ipaddress.IPv6Network("fe80::/10"),
)


def system_resolver(host: str, port: int) -> Sequence[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ImageFetchError("the image host's name does not resolve") from None
    return [str(info[4][0]) for info in infos]


def is_public_address(address: IPAddress) -> bool:
    """True only for a global unicast address, IPv4 embedded in IPv6 checked as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        embedded = address.ipv4_mapped
        if embedded is None and address in _SIXTOFOUR:
            embedded = address.sixtofour
        if embedded is None and address in _TEREDO:
            teredo = address.teredo
            embedded = teredo[1] if teredo else None
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    if any(address.version == network.version and address in network for network in _ALSO_REFUSED):
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def vet_host(
    host: str,
    port: int,
    resolver: Resolver = system_resolver,
    allowed: Callable[[IPAddress], bool] = is_public_address,
) -> IPAddress:
    """The address to connect to for `host`: refused unless every address it resolves to is allowed
    (a name that resolves to a public and a private address could be either on the next lookup)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: list[IPAddress] = [literal]
    else:
        try:
            candidates = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
        except ValueError:
            raise ImageFetchError("the image host's name does not resolve to an IP address") from None
        # A zone id ("fe80::1%eth0") is dropped above; such addresses are link-local, refused below.
    if not candidates:
        raise ImageFetchError("the image host's name does not resolve")
    if not all(allowed(a) for a in candidates):
        raise ImageFetchError(
            "the image host is not a public address (private, loopback or reserved addresses are refused)"
        )
    return candidates[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a vetted address while `Host` (and, for TLS, SNI) name the URL's host."""

    def __init__(self, host: str, port: int, address: IPAddress, timeout: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((str(self._address), self.port), timeout=self.timeout)
        # Set before the TLS handshake, so the fetch's timer can cut a handshake that trickles too.
        self.sock = sock
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(slots=True)
class HttpImageFetcher:
    """The `ImageFetcher` for the gateway. `resolver`, `allowed` and `ports` are injectable so tests
    can fetch from a local server through the same code path; production uses the defaults."""

    resolver: Resolver = system_resolver
    allowed: Callable[[IPAddress], bool] = is_public_address
    ports: frozenset[int] = DEFAULT_PORTS
    max_redirects: int = 3
    # The system's CA bundle, loaded on the first https fetch (not at cold start: most tenants
    # never allow remote URLs).
    tls: ssl.SSLContext | None = None

    def fetch(self, url: str, *, max_bytes: int, timeout_s: float) -> FetchedImage:
        deadline = time.monotonic() + timeout_s
        downgrade_from_https = False
        for _ in range(self.max_redirects + 1):
            target = self._target(url)
            if downgrade_from_https and target.scheme == "http":
                raise ImageFetchError("the image URL redirects from https to http")
            location = self._get(target, max_bytes, deadline)
            if isinstance(location, FetchedImage):
                return location
            downgrade_from_https = downgrade_from_https or target.scheme == "https"
            url = urljoin(target.geturl(), location)
        raise ImageFetchError(f"the image URL redirects more than {self.max_redirects} times")

    def _target(self, url: str) -> SplitResult:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ImageFetchError("the image URL is not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise ImageFetchError("only http and https image URLs are fetched")
        if not parts.hostname:
            raise ImageFetchError("the image URL has no host")
        if parts.username is not None or parts.password is not None:
            raise ImageFetchError("image URLs with credentials are refused")
        if (port or (443 if parts.scheme == "https" else 80)) not in self.ports:
            raise ImageFetchError("the image URL's port is not allowed (80 and 443 are)")
        return parts

    def _get(self, target: SplitResult, max_bytes: int, deadline: float) -> FetchedImage | str:
        """The image, or the location a redirect points to."""
        host = target.hostname or ""
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            raise ImageFetchError("the image URL's host name is not valid") from None
        address = _within(deadline, lambda: vet_host(host, port, self.resolver, self.allowed))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ImageFetchError("fetching the image took too long")
        connection = _PinnedHTTPConnection(
            host, port, address, remaining, self._tls() if target.scheme == "https" else None
        )
        # The socket timeout bounds each read; this timer bounds them all together.
        timer = threading.Timer(remaining, _abort, (connection,))
        timer.daemon = True
        timer.start()
        try:
            return self._exchange(connection, target, max_bytes, deadline)
        except ImageFetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError):
            if time.monotonic() >= deadline:
                raise ImageFetchError("fetching the image took too long") from None
            raise ImageFetchError("the image host could not be reached or sent an invalid answer") from None
        finally:
            timer.cancel()
            connection.close()

    def _tls(self) -> ssl.SSLContext:
        if self.tls is None:
            self.tls = ssl.create_default_context()
        return self.tls

    @staticmethod
    def _exchange(
        connection: _PinnedHTTPConnection, target: SplitResult, max_bytes: int, deadline: float
    ) -> FetchedImage | str:
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        connection.request(
            "GET",
            path,
            headers={"User-Agent": _USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
        )
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location")
            if not location:
                raise ImageFetchError("the image URL redirects without a location")
            return location
        if response.status != 200:
            raise ImageFetchError(f"the image host answered HTTP {response.status}")
        content_type = response.getheader("Content-Type") or ""
        media_type = media_type_of(content_type)
        if media_type is None:
            raise ImageFetchError("the image host did not send a png, jpeg, gif or webp image (Content-Type)")
        if (response.getheader("Content-Encoding") or "identity").lower() != "identity":
            raise ImageFetchError("the image host sent an encoded (compressed) body")
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ImageFetchError(f"the image is larger than {max_bytes} bytes, the limit per image")
        body = bytearray()
        while True:
            if time.monotonic() >= deadline:
                raise ImageFetchError("fetching the image took too long")
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise ImageFetchError(f"the image is larger than {max_bytes} bytes, the limit per image")
        return FetchedImage(bytes(body), media_type)


def _within(deadline: float, vet: Callable[[], IPAddress]) -> IPAddress:
    """`vet()` (which resolves the host: getaddrinfo has no timeout of its own) within the fetch's
    time limit; a lookup still running then is left to finish in its daemon thread."""
    outcome: list[IPAddress | ImageFetchError] = []

    def run() -> None:
        try:
            outcome.append(vet())
        except ImageFetchError as error:
            outcome.append(error)
        except Exception:  # an injected resolver's own failure: the host is not usable either way
            outcome.append(ImageFetchError("the image host's name does not resolve"))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0.0))
    if not outcome:
        raise ImageFetchError("resolving the image host took too long")
    result = outcome[0]
    if isinstance(result, ImageFetchError):
        raise result
    return result


def _abort(connection: http.client.HTTPConnection) -> None:
    """Ends a fetch that ran out of time: a blocked read returns with an error."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)

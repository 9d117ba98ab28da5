"""Remote image fetching without SSRF (llmops.adapters.http_images).

The address vetting is tested with injected resolvers (no DNS). The fetch runs against a local HTTP
server, which is on loopback and so refused by the production vetting: these tests inject a
resolver and an address check that admit it, per fetcher instance, and check the same fetcher with
the production check refuses it.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmops.adapters.http_images import HttpImageFetcher, IPAddress, is_public_address, vet_host
from llmops.domain.images import ImageFetchError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _resolver(*addresses: str) -> Callable[[str, int], Sequence[str]]:
    return lambda _host, _port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # EC2/ECS instance metadata
        "169.254.170.2",  # ECS task credentials
        "100.64.0.1",  # shared address space (CGNAT)
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.0.8",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",  # EC2 metadata over IPv6
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:0001::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2001:db8::1",  # documentation
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))
    with pytest.raises(ImageFetchError, match="not a public address"):
        vet_host("images.example", 443, _resolver(address))
    with pytest.raises(ImageFetchError):
        vet_host(address, 443)  # an IP literal in the URL is vetted the same, without resolving


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))
    assert vet_host("images.example", 443, _resolver(address)) == ipaddress.ip_address(address)


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(ImageFetchError):
        vet_host("rebind.example", 443, _resolver("93.184.215.14", "10.0.0.7"))
    with pytest.raises(ImageFetchError):
        vet_host("rebind.example", 443, _resolver("2606:4700:4700::1111", "::1"))


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(ImageFetchError, match="does not resolve"):
        vet_host("nowhere.example", 443, _resolver())
    with pytest.raises(ImageFetchError, match="does not resolve"):
        vet_host("nowhere.example", 443, _resolver("not-an-ip"))


def test_the_vetted_address_is_the_one_connected_to() -> None:
    assert vet_host("a.example", 80, _resolver("8.8.4.4", "8.8.8.8")) == ipaddress.ip_address("8.8.4.4")


# --- fetching from a local server -------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Callable[[_Handler], None]] = {}
    seen_hosts: list[str] = []

    def do_GET(self) -> None:
        self.seen_hosts.append(self.headers.get("Host", ""))
        self.routes.get(self.path, _not_found)(self)

    def log_message(self, *_args: Any) -> None:
        pass


def _not_found(handler: _Handler) -> None:
    handler.send_response(404)
    handler.end_headers()


def _send(status: int, body: bytes = b"", **headers: str) -> Callable[[_Handler], None]:
    def respond(handler: _Handler) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def _trickle(handler: _Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    try:
        for byte in PNG:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass


def _endless(handler: _Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")  # no Content-Length: read until the limit
    handler.end_headers()
    try:
        handler.wfile.write(PNG)
        for _ in range(1000):
            handler.wfile.write(b"\0" * 4096)
    except OSError:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def _loopback_ok(address: IPAddress) -> bool:
    return address.is_loopback


def _fetcher(port: int, **overrides: Any) -> HttpImageFetcher:
    values: dict[str, Any] = {
        "resolver": _resolver("127.0.0.1"),
        "allowed": _loopback_ok,
        "ports": frozenset({port}),
    }
    values.update(overrides)
    return HttpImageFetcher(**values)


def _routes(**routes: Callable[[_Handler], None]) -> None:
    _Handler.routes = {f"/{name}": respond for name, respond in routes.items()}


def test_an_image_is_fetched_with_the_url_host_in_the_host_header(server: int) -> None:
    _routes(cat=_send(200, PNG, Content_Type="image/png"))
    _Handler.seen_hosts.clear()
    image = _fetcher(server).fetch(f"http://images.example:{server}/cat", max_bytes=1000, timeout_s=5)
    assert (image.data, image.content_type) == (PNG, "image/png")
    # Connected to the vetted address, yet the server saw the URL's name.
    assert _Handler.seen_hosts == [f"images.example:{server}"]


def test_the_production_check_refuses_the_local_server(server: int) -> None:
    _routes(cat=_send(200, PNG, Content_Type="image/png"))
    fetcher = HttpImageFetcher(ports=frozenset({server}))  # default resolver and address check
    for url in (f"http://127.0.0.1:{server}/cat", f"http://localhost:{server}/cat", f"http://[::1]:{server}/cat"):
        with pytest.raises(ImageFetchError, match=r"not a public address|does not resolve"):
            fetcher.fetch(url, max_bytes=1000, timeout_s=5)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://images.example/cat",
        "file:///etc/passwd",
        "gopher://images.example:70/",
        "http://user:pw@images.example/cat",
        "http://images.example:8080/cat",  # only the fetcher's ports
        "http:///cat",
        "http://images.example:99999/cat",
    ],
)
def test_urls_outside_the_rules_are_refused_before_connecting(server: int, url: str) -> None:
    with pytest.raises(ImageFetchError) as caught:
        _fetcher(server).fetch(url, max_bytes=1000, timeout_s=5)
    assert "images.example" not in caught.value.reason and "passwd" not in caught.value.reason


def test_default_ports_are_80_and_443() -> None:
    with pytest.raises(ImageFetchError, match="port"):
        HttpImageFetcher(resolver=_resolver("8.8.8.8")).fetch("http://a.example:22/", max_bytes=10, timeout_s=1)


@pytest.mark.parametrize(
    ("respond", "reason"),
    [
        (_send(200, b"<html>", Content_Type="text/html"), "Content-Type"),
        (_send(200, PNG), "Content-Type"),
        (_send(404, b"nope"), "HTTP 404"),
        (_send(500, b"secret stack trace", Content_Type="text/plain"), "HTTP 500"),
        (_send(200, PNG * 40, Content_Type="image/png"), "larger than"),
        (_send(200, PNG, Content_Type="image/png", Content_Encoding="gzip"), "encoded"),
        (_send(302), "without a location"),
    ],
)
def test_bad_answers_are_refused_with_a_reason_and_no_content(
    server: int, respond: Callable[[_Handler], None], reason: str
) -> None:
    _routes(img=respond)
    with pytest.raises(ImageFetchError, match=reason) as caught:
        _fetcher(server).fetch(f"http://images.example:{server}/img", max_bytes=1000, timeout_s=5)
    assert "secret" not in caught.value.reason and "html" not in caught.value.reason


def test_a_body_without_length_is_abandoned_at_the_limit(server: int) -> None:
    _routes(big=_endless)
    with pytest.raises(ImageFetchError, match="larger than 10000 bytes"):
        _fetcher(server).fetch(f"http://images.example:{server}/big", max_bytes=10_000, timeout_s=5)


def test_one_time_limit_bounds_a_trickling_server(server: int) -> None:
    _routes(slow=_trickle)
    started = time.monotonic()
    with pytest.raises(ImageFetchError, match="too long"):
        _fetcher(server).fetch(f"http://images.example:{server}/slow", max_bytes=1000, timeout_s=0.5)
    assert time.monotonic() - started < 2.0


def test_redirects_are_followed_and_each_target_vetted(server: int) -> None:
    _routes(
        a=_send(302, Location="/b"),
        b=_send(301, Location=f"http://other.example:{server}/cat"),
        cat=_send(200, PNG, Content_Type="image/png"),
        to_metadata=_send(302, Location=f"http://169.254.169.254:{server}/latest/meta-data/"),
        loop=_send(302, Location="/loop"),
    )
    fetcher = _fetcher(server)
    assert fetcher.fetch(f"http://images.example:{server}/a", max_bytes=1000, timeout_s=5).data == PNG

    resolved: list[str] = []

    def resolver(host: str, _port: int) -> Sequence[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    _fetcher(server, resolver=resolver).fetch(f"http://images.example:{server}/a", max_bytes=1000, timeout_s=5)
    assert resolved == ["images.example", "images.example", "other.example"]

    # The redirect target is vetted with the production check: the metadata address is refused
    # (the injected check admits loopback only).
    with pytest.raises(ImageFetchError, match="not a public address"):
        fetcher.fetch(f"http://images.example:{server}/to_metadata", max_bytes=1000, timeout_s=5)
    with pytest.raises(ImageFetchError, match="more than 3 times"):
        fetcher.fetch(f"http://images.example:{server}/loop", max_bytes=1000, timeout_s=5)
    with pytest.raises(ImageFetchError, match="more than 0 times"):
        _fetcher(server, max_redirects=0).fetch(f"http://images.example:{server}/a", max_bytes=1000, timeout_s=5)


def test_an_unreachable_host_is_a_fetch_error(server: int) -> None:
    fetcher = _fetcher(server, resolver=_resolver("127.0.0.1"), ports=frozenset({1}))
    with pytest.raises(ImageFetchError, match="could not be reached"):
        fetcher.fetch("http://images.example:1/x", max_bytes=100, timeout_s=2)


def test_a_slow_name_lookup_is_bounded_by_the_time_limit(server: int) -> None:
    def slow(_host: str, _port: int) -> Sequence[str]:
        time.sleep(2)
        return ["127.0.0.1"]

    started = time.monotonic()
    with pytest.raises(ImageFetchError, match="resolving the image host took too long"):
        _fetcher(server, resolver=slow).fetch(f"http://images.example:{server}/cat", max_bytes=100, timeout_s=0.3)
    assert time.monotonic() - started < 1.5


def test_a_failing_injected_resolver_is_a_fetch_error(server: int) -> None:
    def broken(_host: str, _port: int) -> Sequence[str]:
        raise RuntimeError("boom")

    with pytest.raises(ImageFetchError, match="does not resolve"):
        _fetcher(server, resolver=broken).fetch(f"http://images.example:{server}/cat", max_bytes=100, timeout_s=1)


def test_https_speaks_tls_to_the_vetted_address(server: int) -> None:
    # The local server speaks plain HTTP: the TLS handshake (SNI images.example) fails, so the
    # https path really negotiates TLS with certificate checks instead of falling back to http.
    _routes(cat=_send(200, PNG, Content_Type="image/png"))
    fetcher = _fetcher(server)
    with pytest.raises(ImageFetchError, match="could not be reached"):
        fetcher.fetch(f"https://images.example:{server}/cat", max_bytes=1000, timeout_s=3)
    assert fetcher.tls is not None and fetcher.tls.verify_mode is ssl.CERT_REQUIRED and fetcher.tls.check_hostname


def test_no_tls_context_is_built_until_an_https_fetch() -> None:
    assert HttpImageFetcher().tls is None

"""The outbound address guard (SSRF): cloud metadata and other never-useful addresses are refused
in every spelling and address family, loopback and private networks as the policy says, and a
refused connection is never opened: not directly, not through a redirect, not through a proxy.

Safety: only loopback (127.0.0.0/8, ::1) is ever connected to. Every other address is judged
without a connection: by the decision function, or by `resolve()`, which never connects.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from config import errors
from providers.runtime import http, netguard
from providers.runtime.base import Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.netguard import AddressPolicy, ForbiddenAddress
from providers.runtime.openai_compat import OpenAICompatAdapter
from tests.fakes.openai_server import OpenAIFake
from tests.fakes.outbound_servers import Listener, RedirectFake

STRICT = AddressPolicy(allow_loopback=False, allow_private=False)
NO_LOOPBACK = AddressPolicy(allow_loopback=False)


def numeric(host: str, port: int, family: int, kind: int):
    """The real getaddrinfo, for numeric hosts only: no DNS query can leave this machine."""
    return socket.getaddrinfo(host, port, family, kind, 0, socket.AI_NUMERICHOST)


def no_lookup(host: str, port: int, family: int, kind: int):
    raise AssertionError(f"{host} must be refused before any lookup")


def answers(*addresses: str):
    """A resolver whose every name resolves to `addresses` (as a DNS server could answer)."""

    def resolve(host: str, port: int, family: int, kind: int):
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    return resolve


def refused(host: str, policy: AddressPolicy = netguard.DEFAULT_POLICY, resolver=numeric) -> str:
    with pytest.raises(ForbiddenAddress) as caught:
        netguard.resolve(host, 80, policy, resolver=resolver)
    return str(caught.value)


# --- the decision, without connecting ---------------------------------------------------------

METADATA_SPELLINGS = [
    "169.254.169.254",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "0xa9.0xfe.0xa9.0xfe",
    "[fd00:ec2::254]",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "[::ffff:100.100.100.200]",
    "[2002:a9fe:a9fe::1]",  # 6to4
    "[64:ff9b::a9fe:a9fe]",  # NAT64
    "[64:ff9b::169.254.169.254]",
    "[2001:0:4136:e378:8000:63bf:5601:5601]",  # Teredo, client 169.254.169.254 (obfuscated)
]


@pytest.mark.parametrize("host", METADATA_SPELLINGS)
def test_every_spelling_of_a_metadata_address_is_refused_even_with_everything_allowed(
    host,
) -> None:
    assert "cloud metadata addresses are never allowed" in refused(host)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.0.1", "link-local"),
        ("[fe80::1]", "link-local"),
        ("[::ffff:169.254.1.1]", "link-local"),
        ("0", "unspecified"),  # http://0 reaches this very host
        ("0.0.0.0", "unspecified"),  # noqa: S104 (judged, never bound)
        ("0.1.2.3", "unspecified"),
        ("[::]", "unspecified"),
        ("[::ffff:0.0.0.0]", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("[fec0::1]", "reserved"),
        ("[::a9fe:a9fe]", "reserved"),  # IPv4-compatible (deprecated)
        ("[100::1]", "reserved"),
    ],
)
def test_addresses_that_are_never_useful_are_always_refused(host, reason) -> None:
    assert f"{reason} addresses are never allowed" in refused(host)


@pytest.mark.parametrize(
    "name",
    [
        "metadata.google.internal",
        "metadata.google.internal.",
        "METADATA.Google.Internal",
        "metadata",
        "metadata.",
        "instance-data",
        "instance-data.",
    ],
)
def test_metadata_names_are_refused_before_any_lookup(name) -> None:
    message = refused(name, resolver=no_lookup)
    assert message.endswith(": cloud metadata host names are never allowed.")
    assert netguard.host_refusal(name, netguard.DEFAULT_POLICY) is not None


def test_a_name_resolving_to_a_metadata_address_is_refused_with_both_in_the_message() -> None:
    assert refused("models.example", resolver=answers("169.254.169.254")) == (
        "Refused to connect to models.example (169.254.169.254): "
        "cloud metadata addresses are never allowed."
    )
    assert "(169.254.169.254)" in refused(
        "models.example", resolver=answers("::ffff:169.254.169.254")
    )
    assert "never allowed" in refused("models.example", resolver=answers("fd00:ec2::254"))
    # A name the guard does not know is still judged by what it resolves to.
    assert "never allowed" in refused(
        "metadata.google.internal.evil.example", resolver=answers("169.254.169.254")
    )


def test_only_the_allowed_addresses_of_a_mixed_answer_are_kept() -> None:
    kept = netguard.resolve(
        "models.example",
        80,
        netguard.DEFAULT_POLICY,
        resolver=answers("169.254.169.254", "10.0.0.5"),
    )
    assert [info[4][0] for info in kept] == ["10.0.0.5"]
    # None left: the first refusal is the one reported.
    assert refused("models.example", STRICT, resolver=answers("10.0.0.5", "169.254.169.254")) == (
        "Refused to connect to models.example (10.0.0.5): "
        "private network addresses are not allowed on this server."
    )


LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"]
PRIVATE = [
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.100",
    "100.64.0.1",  # carrier-grade NAT
    "fc00::1",
    "fd12:3456::1",
    "::ffff:10.0.0.1",
    "2002:a00:1::",  # 6to4 carrying 10.0.0.1
    "64:ff9b::192.168.1.1",  # NAT64 carrying 192.168.1.1
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", LOOPBACK + PRIVATE + PUBLIC)
def test_loopback_private_and_public_addresses_are_allowed_by_default(text) -> None:
    assert netguard.refusal(ipaddress.ip_address(text), netguard.DEFAULT_POLICY) is None


@pytest.mark.parametrize("text", LOOPBACK)
def test_loopback_is_refused_when_the_policy_says_so(text) -> None:
    policy = NO_LOOPBACK
    assert "loopback" in netguard.refusal(ipaddress.ip_address(text), policy)
    assert netguard.refusal(ipaddress.ip_address("10.0.0.1"), policy) is None


@pytest.mark.parametrize("text", PRIVATE)
def test_private_networks_are_refused_when_the_policy_says_so(text) -> None:
    policy = AddressPolicy(allow_private=False)
    assert "private network" in netguard.refusal(ipaddress.ip_address(text), policy)
    assert netguard.refusal(ipaddress.ip_address("127.0.0.1"), policy) is None


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_stay_allowed_under_the_strictest_policy(text) -> None:
    assert netguard.refusal(ipaddress.ip_address(text), STRICT) is None


def test_denied_networks_refuse_both_families_and_what_ipv6_carries() -> None:
    policy = AddressPolicy(
        denied_networks=(
            ipaddress.ip_network("10.9.0.0/16"),
            ipaddress.ip_network("2001:db8:1::/48"),
        )
    )
    for text in ("10.9.1.1", "::ffff:10.9.1.1", "2002:a09:101::", "2001:db8:1::5"):
        assert "is denied on this server" in netguard.refusal(ipaddress.ip_address(text), policy)
    for text in ("10.8.1.1", "2001:db8:2::5"):
        assert netguard.refusal(ipaddress.ip_address(text), policy) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("169.254.169.254.", "169.254.169.254"),  # trailing dot
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 (judged, never bound)
        ("::ffff:a9fe:a9fe", "::ffff:169.254.169.254"),
        ("fe80::1%eth0", "fe80::1"),
        ("localhost", None),
        ("models.example", None),
    ],
)
def test_literal_addresses_are_read_in_every_spelling_without_dns(host, address) -> None:
    found = netguard.literal_address(host)
    assert found == (None if address is None else ipaddress.ip_address(address))


# --- connections (loopback only) --------------------------------------------------------------


@pytest.fixture(scope="module")
def fake():
    with OpenAIFake() as server:
        yield server


def list_models(base_url: str, policy: AddressPolicy = netguard.DEFAULT_POLICY):
    endpoint = Endpoint(
        base_url=base_url,
        credentials={"api_key": "fake-key"},
        timeouts=Timeouts(connect=2, read=5),
        retry=RetryPolicy(attempts=3, backoff=0.01),
    )
    return OpenAICompatAdapter(endpoint, http.pool(policy)).list_models()


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "127.1", "0x7f000001"]
)
def test_a_refused_loopback_server_receives_nothing(fake, host) -> None:
    port = fake.url.rsplit(":", 1)[1]
    fake.received.clear()
    with pytest.raises(errors.UpstreamForbiddenAddress) as caught:
        list_models(f"http://{host}:{port}/v1", NO_LOOPBACK)
    assert caught.value.code == "forbidden_address"
    assert not caught.value.retryable
    assert caught.value.message.startswith("Refused to connect to ")
    assert caught.value.message.endswith("loopback addresses are not allowed on this server.")
    assert fake.received == []

    # The same server, under the default policy, is reached: the refusal above was the guard's.
    assert list_models(f"http://{host}:{port}/v1")
    assert len(fake.received) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_a_refused_address_is_never_followed(status) -> None:
    """The first server is allowed and answers a redirect to a second one on 127.0.0.2, which
    the policy denies: every hop connects through the guard, so the second hears nothing."""
    policy = AddressPolicy(denied_networks=(ipaddress.ip_network("127.0.0.2/32"),))
    with RedirectFake() as first, Listener("127.0.0.2") as second:
        first.redirect(f"{second.url}/v1/models", status)
        with pytest.raises(errors.UpstreamForbiddenAddress) as caught:
            list_models(f"{first.url}/v1", policy)
        assert caught.value.message == (
            "Refused to connect to 127.0.0.2: 127.0.0.2/32 is denied on this server."
        )
        assert len(first.received) == 1
        assert second.connections == []

        # Control: without the denial, the redirect is followed to the second server.
        assert list_models(f"{first.url}/v1") == []
        assert len(second.connections) == 1


def test_credentials_stay_with_their_host_on_a_redirect(fake) -> None:
    """A backend that redirects to another host does not get the key forwarded there: every
    header that carries a credential is dropped on the way (not only `Authorization`)."""
    with RedirectFake() as first:
        first.redirect(f"{fake.url}/v1/models", 307)
        fake.received.clear()
        client = http.HttpClient(
            base_url=first.url,
            headers={"Authorization": "Bearer sk-kept-home-0001", "api-key": "sk-kept-home-0002",
                     "X-Trace": "kept"},
            pool=http.pool(),
            timeouts=Timeouts(connect=2, read=5),
            retry=RetryPolicy(attempts=1),
            secrets=(),
            error_message=str,
        )  # fmt: skip
        with pytest.raises(errors.UpstreamAuth):  # the fake wants a key, and got none
            client.request("GET", "v1/models")
        assert first.received[0].header("Authorization") == "Bearer sk-kept-home-0001"
        forwarded = fake.received[-1]
        assert forwarded.path == "/v1/models"
        assert forwarded.header("Authorization") == ""
        assert forwarded.header("api-key") == ""
        assert forwarded.header("X-Trace") == "kept"


def test_a_url_scheme_in_capitals_is_a_url_scheme(fake) -> None:
    host = fake.url.removeprefix("http://")
    assert list_models(f"HTTP://{host}/v1")


def test_a_non_ascii_host_name_is_sent_in_its_ascii_form(monkeypatch) -> None:
    """пример.рф is looked up as xn--e1afmkfd.xn--p1ai (urllib3 with the idna package): the call
    fails for want of DNS here, not as a URL it cannot send."""
    lookups = []

    def resolve(host: str, port: int, policy: AddressPolicy, **_: object):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(netguard, "resolve", resolve)
    with pytest.raises(errors.UpstreamConnection):
        list_models("http://пример.рф/v1")
    assert set(lookups) == {"xn--e1afmkfd.xn--p1ai"}


def test_a_refused_address_is_not_retried() -> None:
    with Listener("127.0.0.1") as server:
        policy = AddressPolicy(denied_networks=(ipaddress.ip_network("127.0.0.0/8"),))
        calls = []
        client = http.HttpClient(
            base_url=server.url,
            headers={},
            pool=http.pool(policy),
            timeouts=Timeouts(connect=2, read=5),
            retry=RetryPolicy(attempts=5),
            secrets=(),
            error_message=str,
            sleep=calls.append,
        )
        with pytest.raises(errors.UpstreamForbiddenAddress):
            client.request("GET", "models")
        assert calls == []
        assert server.connections == []


def test_one_lookup_and_the_connection_goes_to_the_address_it_returned() -> None:
    """DNS rebinding: a second lookup could answer differently; there is none."""
    with Listener("127.0.0.1") as checked, Listener("127.0.0.3") as rebound:
        lookups = []

        def resolver(host: str, port: int, family: int, kind: int):
            lookups.append(host)
            target = checked if len(lookups) == 1 else rebound
            return answers(target.host)(host, target.port, family, kind)

        with netguard.connect(
            ("rebinding.example", 1), 2.0, policy=netguard.DEFAULT_POLICY, resolver=resolver
        ) as sock:
            assert sock.getpeername() == ("127.0.0.1", checked.port)
        assert lookups == ["rebinding.example"]
        deadline = time.monotonic() + 2
        while not checked.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(checked.connections) == 1
        assert rebound.connections == []


def test_proxies_are_never_used(fake, monkeypatch) -> None:
    """An environment proxy would make the guard judge the proxy's address, not the backend's:
    it is ignored (the HTTP client has no proxy setting at all)."""
    with Listener("127.0.0.1") as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        fake.received.clear()
        assert list_models(f"{fake.url}/v1")
        assert len(fake.received) == 1
        assert proxy.connections == []


# --- TLS: the socket is ours, the name is still the host's ------------------------------------


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_https_sends_and_verifies_the_host_name(tmp_path) -> None:
    cert_file, key_file = _self_signed(tmp_path, "localhost")
    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            seen["host"] = self.headers.get("Host")
            body = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def get(url: str, policy: AddressPolicy = netguard.DEFAULT_POLICY) -> urllib3.BaseHTTPResponse:
        manager = netguard.GuardedPoolManager(policy=policy, ca_certs=cert_file, retries=False)
        return manager.request("GET", url, timeout=5)

    try:
        response = get(f"https://localhost:{port}/v1/models")
        assert response.json() == {"data": []}
        assert seen == {"sni": "localhost", "host": f"localhost:{port}"}

        # The certificate is still checked against the name in the URL.
        with pytest.raises(urllib3.exceptions.SSLError):
            get(f"https://127.0.0.1:{port}/")

        seen.clear()
        with pytest.raises(urllib3.exceptions.NewConnectionError) as caught:
            get(f"https://localhost:{port}/v1/models", NO_LOOPBACK)
        assert netguard.forbidden_in(caught.value) is not None
        assert seen == {}
    finally:
        server.shutdown()
        server.server_close()

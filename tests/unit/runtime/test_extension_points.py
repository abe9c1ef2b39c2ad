"""The base adapter's extension points: `sign` runs for every attempt and what it adds is masked
and kept from other hosts; `TokenCache` keeps an exchanged token until shortly before it expires;
which credentials are secret is the manifest's word; `offers` says what a family serves."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from config import errors
from providers.catalog import parse_file
from providers.routing import endpoint
from providers.runtime import http
from providers.runtime.base import Adapter, Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.openai_compat import OpenAICompatAdapter
from providers.runtime.tokens import TokenCache
from tests.fakes.base import FakeServer, Reply
from tests.unit.runtime.test_netguard import RedirectFake

CATALOG = Path(__file__).resolve().parents[3] / "providers" / "catalog"


class Stamped(Adapter):
    """Signs each attempt with a fresh stamp, as SigV4 signs the time."""

    family = "stamped"

    def __init__(self, *args, **kwargs) -> None:
        self.signed = 0
        super().__init__(*args, **kwargs)

    def sign(self, method, url, body, headers):
        self.signed += 1
        return {**headers, "Authorization": f"Stamp sig-{self.signed}-of-{body!r}", "X-Stamp": "1"}

    def models(self):
        return self.http.json("GET", "v1/models")


class StampFake(FakeServer):
    def __init__(self) -> None:
        super().__init__(api_key=None)
        self.route("GET", "/v1/models", lambda request: Reply(body={"data": []}))

    def authorized(self, request) -> bool:
        return request.header("authorization").startswith("Stamp sig-")

    def unauthorized(self) -> Reply:
        return self.error(403, "bad signature")


def stamped(url: str, attempts: int = 3) -> Stamped:
    where = Endpoint(
        base_url=url,
        timeouts=Timeouts(connect=2, read=5),
        retry=RetryPolicy(attempts=attempts, backoff=0.01),
    )
    return Stamped(where, http.pool())


def test_every_attempt_is_signed_afresh() -> None:
    with StampFake() as fake:
        fake.fail("500", times=2)
        adapter = stamped(fake.url)
        assert adapter.models() == {"data": []}
        assert [r.header("authorization") for r in fake.received] == [
            "Stamp sig-1-of-None", "Stamp sig-2-of-None", "Stamp sig-3-of-None",
        ]  # fmt: skip


def test_what_signing_adds_is_masked_in_errors() -> None:
    with StampFake() as fake:
        fake.fail("echo_key", status=400)
        adapter = stamped(fake.url, attempts=1)
        with pytest.raises(errors.UpstreamBadRequest) as caught:
            adapter.models()
        assert "sig-1" not in str(caught.value)
        assert "sig-1-of-None" in adapter.secret_values()


def test_signed_credential_headers_do_not_follow_a_redirect_to_another_host() -> None:
    with StampFake() as target, RedirectFake() as first:
        first.redirect(f"{target.url}/v1/models", 307)
        adapter = stamped(first.url, attempts=1)
        with pytest.raises(errors.UpstreamAuth):  # the target wants a signature and got none
            adapter.models()
        assert first.received[0].header("authorization").startswith("Stamp sig-")
        assert target.received[-1].header("authorization") == ""
        assert target.received[-1].header("x-stamp") == "1"  # not a credential: kept


def test_a_family_that_does_not_sign_is_not_asked_to() -> None:
    class Plain(Adapter):
        family = "plain"

    assert Plain(Endpoint(base_url="http://127.0.0.1:9"), http.pool()).http.sign is None


# --- TokenCache -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_kept_until_shortly_before_it_expires() -> None:
    clock, fetched = Clock(), []

    def fetch():
        fetched.append(clock.now)
        return f"token-{len(fetched)}", 3600.0

    cache = TokenCache(clock)
    key = TokenCache.key("family", "the key")
    assert cache.get(key, fetch) == "token-1"
    clock.now += 3600 - 61
    assert cache.get(key, fetch) == "token-1"
    clock.now += 2  # inside the last minute: renewed
    assert cache.get(key, fetch) == "token-2"
    assert len(fetched) == 2


def test_a_short_lived_token_is_renewed_at_half_its_life() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    tokens = iter(["a", "b"])
    assert cache.get("k", lambda: (next(tokens), 60.0)) == "a"
    clock.now += 29
    assert cache.get("k", lambda: (next(tokens), 60.0)) == "a"
    clock.now += 2
    assert cache.get("k", lambda: (next(tokens), 60.0)) == "b"


def test_other_credentials_get_their_own_token_and_a_refused_one_is_forgotten() -> None:
    cache = TokenCache()
    one, two = TokenCache.key("f", "key one"), TokenCache.key("f", "key two")
    assert one != two
    assert "key one" not in one
    assert cache.get(one, lambda: ("t1", 3600)) == "t1"
    assert cache.get(two, lambda: ("t2", 3600)) == "t2"
    cache.forget(one)
    assert cache.get(one, lambda: ("t1 again", 3600)) == "t1 again"
    assert cache.get(two, lambda: ("never", 3600)) == "t2"


def test_threads_wanting_the_same_token_fetch_it_once() -> None:
    cache, calls, results = TokenCache(), [], []
    gate = threading.Event()

    def fetch():
        calls.append(1)
        gate.wait(5)
        return "shared", 3600.0

    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", fetch))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == ["shared"] * 8
    assert calls == [1]


def test_a_failed_exchange_caches_nothing() -> None:
    cache = TokenCache()

    def refuse():
        raise errors.UpstreamAuth("401: invalid client")

    with pytest.raises(errors.UpstreamAuth):
        cache.get("k", refuse)
    assert cache.get("k", lambda: ("now", 3600)) == "now"


# --- Secrets by the manifest ------------------------------------------------------------------


def test_the_manifest_says_which_credentials_are_secret(settings) -> None:
    manifest = parse_file(CATALOG / "xinference.yaml")
    where = endpoint(
        manifest,
        {"server_url": "http://10.0.0.5:9997", "model_uid": "qwen-7b", "api_key": "xk-secret-1"},
    )
    assert where.secrets == {"api_key": "xk-secret-1"}
    assert where.settings == {"base_url": "http://10.0.0.5:9997", "model_uid": "qwen-7b"}


def test_secrets_the_adapter_reads_as_options_are_masked_too(settings) -> None:
    """Bedrock's keys are credentials; a secret a form keeps outside the runtime's credential map
    still reaches the adapter (as an option) and is still a secret."""
    manifest = parse_file(CATALOG / "bedrock.yaml")
    values = {"auth_method": "Access_Secret_Key", "aws_access_key_id": "AKIAEXAMPLE0000001",
              "aws_secret_access_key": "s3cr3t/abc", "aws_region": "eu-west-1"}  # fmt: skip
    where = endpoint(manifest, values)
    assert set(where.secrets.values()) == {"AKIAEXAMPLE0000001", "s3cr3t/abc"}
    assert where.settings["region"] == "eu-west-1"
    assert where.secret_names == {"access_key_id", "secret_access_key", "api_key"}


def test_an_endpoint_made_by_hand_treats_every_credential_as_secret() -> None:
    where = Endpoint(base_url="", credentials={"api_key": "a", "model_uid": "b"})
    assert where.secrets == {"api_key": "a", "model_uid": "b"}
    assert where.settings == {}


# --- What a family offers ---------------------------------------------------------------------


def test_a_family_built_on_another_refuses_what_it_does_not_offer() -> None:
    """A family on the OpenAI wire that serves chat alone is refused embeddings before any
    request, and still masks its errors."""

    class ChatOnly(OpenAICompatAdapter):
        family = "chat_only"
        offers = frozenset({"chat", "stream"})

    with StampFake() as fake:
        adapter = ChatOnly(Endpoint(base_url=f"{fake.url}/v1"), http.pool())
        for call in (
            lambda: adapter.embed("m", ["x"]),
            lambda: adapter.speak("m", "x", ""),
            lambda: adapter.list_models(),
        ):
            with pytest.raises(errors.InvalidInput) as refused:
                call()
            assert refused.value.code == "unsupported"
        assert fake.received == []
    assert ChatOnly.chat is OpenAICompatAdapter.chat

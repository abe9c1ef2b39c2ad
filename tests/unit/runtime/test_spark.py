"""SparkAdapter against the Spark fake: the signed WebSocket URL, the request frame it sends, chat
and streaming over reply frames, error frames and refused handshakes as typed errors, retries
until the first frame, timeouts, the call's deadline and the address guard."""

from __future__ import annotations

import base64
import json
import re
import ssl
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

import pytest
from sparkai.llm import llm as sparkai_llm

from config import errors
from providers import selectors
from providers.runtime import http, netguard, spark
from providers.runtime.base import ChatRequest, ContentPart, Endpoint, Message, Tool, accumulate
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.spark import CODE_ERRORS, SparkAdapter, signature_query
from tests.fakes.spark_server import SparkFake
from tests.unit.runtime.test_netguard import _self_signed

APP_ID, API_KEY, API_SECRET = "3f9a1b2c", "fake-spark-key-0123456789abcdef", "fake-spark-secret"
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
ROUTES = selectors.manifest_get("spark").runtime.options["routes"]
LITE = "spark-lite"
PIXEL = "data:image/png;base64,iVBORw0KGgo="
TIMEOUTS = Timeouts(connect=2, read=5)


@pytest.fixture
def fake():
    with SparkFake(APP_ID, API_KEY, API_SECRET) as server:
        yield server


def adapter(
    fake,
    *,
    app_id=APP_ID,
    api_secret=API_SECRET,
    retry=FAST_RETRY,
    timeouts=TIMEOUTS,
    pool=None,
) -> SparkAdapter:
    endpoint = Endpoint(
        base_url=fake.url,
        credentials={"app_id": app_id, "api_key": API_KEY, "api_secret": api_secret},
        options={"routes": ROUTES},
        timeouts=timeouts,
        retry=retry,
    )
    return SparkAdapter(endpoint, pool or http.pool())


def ask(text: str, **parameters) -> ChatRequest:
    return ChatRequest(
        messages=(Message("system", "be brief"), Message("user", text)), parameters=parameters
    )


def test_the_signature_is_the_one_iflyteks_sdk_makes(monkeypatch) -> None:
    date = "Fri, 05 May 2023 10:43:39 GMT"
    monkeypatch.setattr(sparkai_llm, "format_date_time", lambda _: date)
    url = "wss://spark-api.xf-yun.com/v1.1/chat"
    theirs = dict(
        parse_qsl(urlsplit(sparkai_llm._SparkLLMClient._create_url(url, API_KEY, API_SECRET)).query)
    )
    ours = signature_query(url, API_KEY, API_SECRET, date)
    assert (
        (ours["date"], ours["host"])
        == (date, "spark-api.xf-yun.com")
        == (theirs["date"], theirs["host"])
    )

    def fields(authorization: str) -> dict[str, str]:  # the SDK's text has extra spaces
        return dict(re.findall(r'(\w+)="([^"]*)"', base64.b64decode(authorization).decode()))

    assert fields(ours["authorization"]) == fields(theirs["authorization"])
    assert fields(ours["authorization"])["api_key"] == API_KEY


def test_chat_sends_the_documented_frame_and_reports_usage(fake) -> None:
    result = adapter(fake).chat(LITE, ask("hello spark", temperature=0.3, max_tokens=64, top_k=2))
    assert result.text == "You said: hello spark"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 4)
    handshake = fake.received[-1]
    assert handshake.path == "/v1.1/chat"
    assert set(handshake.query) == {"authorization", "date", "host"}
    assert json.loads(handshake.body) == {
        "header": {"app_id": APP_ID, "uid": "model-provider-settings"},
        "parameter": {"chat": {"domain": "lite", "temperature": 0.3, "max_tokens": 64, "top_k": 2}},
        "payload": {
            "message": {
                "text": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hello spark"},
                ]
            }
        },
    }


@pytest.mark.parametrize("model", sorted(ROUTES))
def test_every_catalog_model_reaches_its_route_with_its_domain(fake, model) -> None:
    assert adapter(fake).chat(model, ask("which route")).text == "You said: which route"
    assert fake.received[-1].path == ROUTES[model]["path"]
    assert (
        json.loads(fake.received[-1].body)["parameter"]["chat"]["domain"]
        == (ROUTES[model]["domain"])
    )


def test_streaming_yields_a_chunk_a_frame(fake) -> None:
    chunks = list(adapter(fake).stream(LITE, ask("one two three")))
    assert len(chunks) == 5
    assert [c.finish_reason for c in chunks] == [None] * 4 + ["stop"]
    assert chunks[-1].usage.completion_tokens == 5
    assert accumulate(iter(chunks)).text == "You said: one two three"


def test_validation_is_a_one_token_chat(fake) -> None:
    assert adapter(fake).validate(LITE, "llm").details == {"model": LITE}
    assert json.loads(fake.received[-1].body)["parameter"]["chat"]["max_tokens"] == 1


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest(messages=(Message("user", "hi"),), tools=(Tool("search"),)),
        ChatRequest(messages=(Message("tool", "42", tool_call_id="call-1"),)),
        ChatRequest(messages=(Message("user", (ContentPart("image", image_url=PIXEL),)),)),
    ],
    ids=["tools", "tool-result", "image"],
)
def test_what_the_websocket_api_lacks_is_refused_before_connecting(fake, request_) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        adapter(fake).chat(LITE, request_)
    assert refused.value.code == "unsupported"
    assert not fake.received


def test_an_unknown_model_is_not_found(fake) -> None:
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).chat("spark-9", ask("hi"))


@pytest.mark.parametrize(
    ("credentials", "status"),
    [({"api_secret": "not-the-secret"}, "401"), ({"app_id": "someone-else"}, "10313")],
)
def test_wrong_credentials_are_upstream_auth_and_not_retried(fake, credentials, status) -> None:
    with pytest.raises(errors.UpstreamAuth, match=status):
        adapter(fake, **credentials).chat(LITE, ask("hi"))
    assert len(fake.received) == 1


def test_a_date_more_than_five_minutes_off_is_refused(fake, monkeypatch) -> None:
    monkeypatch.setattr(spark, "formatdate", lambda usegmt: formatdate(0, usegmt=True))
    with pytest.raises(errors.UpstreamAuth, match="403"):
        adapter(fake).chat(LITE, ask("hi"))


def test_a_rate_limit_frame_is_retried(fake) -> None:
    fake.fail("429")
    assert adapter(fake).chat(LITE, ask("again")).text == "You said: again"
    assert len(fake.received) == 2


def test_rate_limits_end_as_rate_limited_after_the_retries(fake) -> None:
    fake.fail("429", times=3)
    with pytest.raises(errors.UpstreamRateLimited, match="11202"):
        adapter(fake).chat(LITE, ask("hi"))
    assert len(fake.received) == 3


def test_engine_errors_are_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="10012"):
        adapter(fake).chat(LITE, ask("hi"))
    assert len(fake.received) == 3


def test_a_connection_dropped_before_the_answer_is_retried(fake) -> None:
    fake.fail("drop")
    assert adapter(fake).chat(LITE, ask("dropped")).text == "You said: dropped"


def test_an_unknown_path_is_not_found(fake) -> None:
    fake.fail("404")
    with pytest.raises(errors.UpstreamNotFound):
        adapter(fake).chat(LITE, ask("hi"))


def test_parameters_out_of_range_are_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="10163"):
        adapter(fake).chat(LITE, ask("hi", temperature=2))


@pytest.mark.parametrize(("code", "kind"), sorted(CODE_ERRORS.items()))
def test_error_codes_map_to_our_classes(fake, monkeypatch, code, kind) -> None:
    monkeypatch.setattr(SparkFake, "_answer", lambda self, request, sid: (code, "no", []))
    with pytest.raises(kind):
        adapter(fake, retry=RetryPolicy(attempts=1)).chat(LITE, ask("hi"))


def test_an_error_frame_mid_stream_raises(fake) -> None:
    fake.fail("echo_key_stream")
    chunks = adapter(fake).stream(LITE, ask("a longer question"))
    assert next(chunks).text == "You"
    with pytest.raises(errors.UpstreamAuth, match="11200"):
        next(chunks)


def test_a_dropped_stream_is_an_error_and_not_retried(fake) -> None:
    fake.fail("drop_stream")
    with pytest.raises(errors.UpstreamConnection):
        list(adapter(fake).stream(LITE, ask("a longer question")))
    assert len(fake.received) == 1


def test_a_slow_backend_times_out_and_is_not_asked_again(fake) -> None:
    fake.fail("slow", seconds=1)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, timeouts=Timeouts(connect=2, read=0.3)).chat(LITE, ask("hi"))
    assert len(fake.received) == 1


def test_a_trickling_backend_is_cut_off_at_the_total_deadline(fake) -> None:
    fake.fail("trickle", seconds=0.3)
    with pytest.raises(errors.UpstreamTimeout, match="in all"):
        adapter(fake, timeouts=Timeouts(connect=2, read=5, total=0.5)).chat(
            LITE, ask("one two three four")
        )


def test_a_frame_that_is_not_json_is_unavailable(fake) -> None:
    fake.fail("broken_json")
    with pytest.raises(errors.UpstreamUnavailable):
        adapter(fake, retry=RetryPolicy(attempts=1)).chat(LITE, ask("hi"))


def test_the_address_guard_judges_the_connection(fake) -> None:
    guarded = http.pool(netguard.AddressPolicy(allow_loopback=False))
    with pytest.raises(errors.UpstreamForbiddenAddress, match="loopback"):
        adapter(fake, pool=guarded).chat(LITE, ask("hi"))
    assert not fake.received


def test_wss_verifies_the_certificate_for_the_host_name(tmp_path, monkeypatch) -> None:
    cert_file, key_file = _self_signed(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with SparkFake(APP_ID, API_KEY, API_SECRET, tls=context) as tls_fake:
        assert tls_fake.url.startswith("https://localhost:")
        with pytest.raises(errors.UpstreamConnection, match="CERTIFICATE_VERIFY_FAILED"):
            adapter(tls_fake, retry=RetryPolicy(attempts=1)).chat(LITE, ask("hi"))
        assert not tls_fake.received  # refused before the handshake

        monkeypatch.setattr(spark.certifi, "where", lambda: cert_file)
        assert adapter(tls_fake).chat(LITE, ask("over tls")).text == "You said: over tls"

"""TencentASRAdapter against the flash recognition fake: the signed request it sends (path, query,
body, HMAC-SHA1 Authorization), transcription, validation, and the API's HTTP-200 error codes
ending as typed errors after bounded retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from types import SimpleNamespace

import pytest

from config import errors
from providers.runtime import http, probe, tencent_asr
from providers.runtime.base import Endpoint
from providers.runtime.http import RetryPolicy, Timeouts
from providers.runtime.tencent_asr import TencentASRAdapter, flash_signature
from tests.fakes.base import wav_with_text
from tests.fakes.tencent_asr_server import APP_ID, SECRET_ID, SECRET_KEY, TencentASRFake

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
WAV = wav_with_text("hello tencent", seconds=0.25)


@pytest.fixture(scope="module")
def fake():
    with TencentASRFake() as server:
        yield server


def adapter(
    fake, *, app_id=APP_ID, secret_id=SECRET_ID, secret_key=SECRET_KEY, retry=FAST_RETRY, read=5.0
) -> TencentASRAdapter:
    endpoint = Endpoint(
        base_url=fake.url,
        credentials={"app_id": app_id, "secret_id": secret_id, "secret_key": secret_key},
        options={"path": "/asr/flash/v1/{app_id}", "engine_type": "16k_zh"},
        timeouts=Timeouts(connect=2, read=read),
        retry=retry,
    )
    return TencentASRAdapter(endpoint, http.pool())


def test_the_signature_signs_method_host_path_and_query() -> None:
    """The document's recipe: "POST" + host + path + "?" + sorted query, HMAC-SHA1, base64."""
    text = (
        "POSTasr.cloud.tencent.com/asr/flash/v1/1259228442?convert_num_mode=1&engine_type=16k_zh"
        "&secretid=AKIDexample&timestamp=1609560089&voice_format=wav"
    )
    expected = base64.b64encode(hmac.new(b"key", text.encode(), hashlib.sha1).digest()).decode()
    assert expected == flash_signature(
        "key",
        "post",
        "asr.cloud.tencent.com",
        "/asr/flash/v1/1259228442",
        "convert_num_mode=1&engine_type=16k_zh&secretid=AKIDexample&timestamp=1609560089"
        "&voice_format=wav",
    )


def test_transcribe_sends_the_documented_request(fake) -> None:
    result = adapter(fake).transcribe("tencent", WAV, "hello.wav")
    assert result.text == "hello tencent"
    assert result.duration_seconds == 0.25
    sent = fake.received[-1]
    assert sent.method == "POST"
    assert sent.path == f"/asr/flash/v1/{APP_ID}"
    assert sent.body == WAV
    assert sent.header("content-type") == "application/octet-stream"
    query = {name: values[0] for name, values in sent.query.items()}
    assert abs(int(query.pop("timestamp")) - time.time()) < 60
    assert query == {
        "secretid": SECRET_ID,
        "engine_type": "16k_zh",
        "voice_format": "wav",
        "convert_num_mode": "1",
        "filter_dirty": "0",
        "filter_modal": "0",
        "filter_punc": "0",
        "first_channel_only": "1",
        "reinforce_hotword": "0",
        "sentence_max_length": "0",
        "speaker_diarization": "0",
        "word_info": "0",
    }
    assert SECRET_KEY not in sent.header("authorization")


def test_the_language_picks_the_engine_and_the_file_its_format(fake) -> None:
    adapter(fake).transcribe("tencent", WAV, "hello.wav", language="en")
    assert fake.received[-1].query["engine_type"] == ["16k_en"]
    adapter(fake).transcribe("tencent", WAV, "recording", language="xx")
    assert fake.received[-1].query["engine_type"] == ["16k_zh"]
    assert fake.received[-1].query["voice_format"] == ["wav"]  # told by its RIFF header
    with pytest.raises(errors.UpstreamBadRequest, match="4007"):
        adapter(fake).transcribe("tencent", WAV, "hello.mp3")  # the API decodes by the name
    with pytest.raises(errors.InvalidInput, match="format"):
        adapter(fake).transcribe("tencent", b"\x00\x01", "blob")


def test_validation_transcribes_a_tiny_wav(fake) -> None:
    assert adapter(fake).validate("tencent", "speech2text").details == {}
    assert fake.received[-1].body == probe.TINY_WAV


def test_the_app_id_must_be_a_number() -> None:
    with TencentASRFake() as server:
        with pytest.raises(errors.InvalidInput) as caught:
            adapter(server, app_id="../admin").transcribe("tencent", WAV, "a.wav")
        assert caught.value.fields == {"app_id": ["Enter the numeric APPID."]}
        assert server.received == []
        with pytest.raises(errors.UpstreamAuth, match="4003"):
            adapter(server, app_id="1000000001").transcribe("tencent", WAV, "a.wav")


@pytest.mark.parametrize(
    "wrong", [{"secret_key": "wrong-key"}, {"secret_id": "AKIDunknown"}], ids=["key", "id"]
)
def test_wrong_credentials_are_upstream_auth_and_not_retried(fake, wrong) -> None:
    before = len(fake.received)
    with pytest.raises(errors.UpstreamAuth, match="4002") as caught:
        adapter(fake, **wrong).transcribe("tencent", WAV, "a.wav")
    assert len(fake.received) - before == 1
    assert "wrong-key" not in str(caught.value)


def test_a_stale_timestamp_is_refused(fake, monkeypatch) -> None:
    monkeypatch.setattr(tencent_asr, "time", SimpleNamespace(time=lambda: time.time() - 600))
    with pytest.raises(errors.UpstreamAuth, match="4002"):
        adapter(fake).transcribe("tencent", WAV, "a.wav")


def test_too_many_at_once_is_retried_then_rate_limited(fake) -> None:
    fake.fail("429", times=2)
    before = len(fake.received)
    assert adapter(fake).transcribe("tencent", WAV, "a.wav").text == "hello tencent"
    assert len(fake.received) - before == 3
    fake.fail("429", times=3)
    with pytest.raises(errors.UpstreamRateLimited, match="4006"):
        adapter(fake).transcribe("tencent", WAV, "a.wav")


def test_overload_is_retried_then_unavailable(fake) -> None:
    fake.fail("500", times=3)
    with pytest.raises(errors.UpstreamUnavailable, match="5001"):
        adapter(fake).transcribe("tencent", WAV, "a.wav")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (4001, errors.UpstreamBadRequest),
        (4004, errors.UpstreamQuota),
        (4005, errors.UpstreamQuota),
        (4012, errors.UpstreamBadRequest),
        (5003, errors.UpstreamTimeout),
        ("x", errors.UpstreamUnavailable),
    ],
)
def test_error_codes_map_to_our_classes(code, kind) -> None:
    assert tencent_asr.error_class(code) is kind


def test_empty_audio_is_a_bad_request(fake) -> None:
    with pytest.raises(errors.UpstreamBadRequest, match="4012"):
        adapter(fake).transcribe("tencent", b"", "a.wav")


def test_a_slow_backend_times_out(fake) -> None:
    fake.fail("slow", seconds=1.5)
    with pytest.raises(errors.UpstreamTimeout):
        adapter(fake, read=0.5, retry=RetryPolicy(attempts=1)).transcribe("tencent", WAV, "a.wav")
    time.sleep(1.2)  # let the slow reply finish before the next test


def test_a_dropped_connection_is_an_error(fake) -> None:
    fake.fail("drop")
    with pytest.raises(errors.UpstreamConnection):
        adapter(fake, retry=RetryPolicy(attempts=1)).transcribe("tencent", WAV, "a.wav")

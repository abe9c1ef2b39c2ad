"""The Tencent ASR fake against a reference client. Tencent publishes no PyPI client for flash
recognition: its speech SDK (github.com/TencentCloud/tencentcloud-speech-sdk-python,
asr/flash_recognizer.py) is a git checkout, and Dify's plugin vendors the same file
(models/tencent/models/speech2text/flash_recognizer.py). `recognize` below replays that file's
algorithm step by step (the query it builds, empty values included; its signature string; its
headers), with `requests` as it does, so the fake is checked by what Dify really sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import requests

from tests.fakes.base import wav_with_text
from tests.fakes.tencent_asr_server import APP_ID, SECRET_ID, SECRET_KEY, TencentASRFake


@pytest.fixture(scope="module")
def fake():
    with TencentASRFake() as server:
        yield server


def recognize(
    fake,
    audio: bytes,
    *,
    voice_format: str = "wav",
    app_id: str = APP_ID,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    timestamp: float | None = None,
) -> dict:
    """FlashRecognizer.recognize(FlashRecognitionRequest(voice_format), audio), aimed at the fake
    (its host stands where the recognizer writes asr.cloud.tencent.com)."""
    host = fake.url.removeprefix("http://")
    query = {
        "appid": app_id,
        "secretid": secret_id,
        "timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "engine_type": "16k_zh",
        "voice_format": voice_format,
        "speaker_diarization": 0,
        "hotword_id": "",
        "customization_id": "",
        "filter_dirty": 0,
        "filter_modal": 0,
        "filter_punc": 0,
        "convert_num_mode": 1,
        "word_info": 0,
        "first_channel_only": 1,
        "reinforce_hotword": 0,
        "sentence_max_length": 0,
    }
    pairs = sorted(query.items())
    sign_string = f"POST{host}/asr/flash/v1/{app_id}?" + "&".join(
        f"{name}={value}" for name, value in pairs if name != "appid"
    )
    digest = hmac.new(secret_key.encode(), sign_string.encode(), hashlib.sha1).digest()
    headers = {"Host": host, "Authorization": base64.b64encode(digest).decode()}
    reply = requests.post("http://" + sign_string[4:], headers=headers, data=audio, timeout=5)
    assert reply.status_code == 200  # errors, too, come as HTTP 200 with a code
    return reply.json()


def test_a_wav_is_recognised(fake) -> None:
    audio = wav_with_text("腾讯云智能语音欢迎您", seconds=0.5)
    reply = recognize(fake, audio)
    assert reply["code"] == 0
    assert reply["message"] == ""
    assert reply["request_id"]
    assert reply["audio_duration"] == 500
    channel = reply["flash_result"][0]
    assert (channel["channel_id"], channel["text"]) == (0, "腾讯云智能语音欢迎您")
    assert channel["sentence_list"][0]["end_time"] == 500
    sent = fake.received[-1]
    assert sent.path == f"/asr/flash/v1/{APP_ID}"
    assert sent.body == audio


@pytest.mark.parametrize(
    "wrong",
    [
        {"secret_key": "wrong-key"},
        {"secret_id": "AKIDunknown"},
        {"timestamp": time.time() - 600},
    ],
    ids=["wrong-key", "unknown-secretid", "stale-timestamp"],
)
def test_auth_failures_are_code_4002(fake, wrong) -> None:
    reply = recognize(fake, wav_with_text("hello"), **wrong)
    assert (reply["code"], reply["message"]) == (4002, "鉴权失败")


def test_what_the_api_rejects(fake) -> None:
    assert recognize(fake, b"")["code"] == 4012
    assert recognize(fake, wav_with_text("hi"), voice_format="mp3")["code"] == 4007
    assert recognize(fake, wav_with_text("hi"), voice_format="flac")["code"] == 4001
    assert recognize(fake, wav_with_text("hi"), app_id="1000000001")["code"] == 4003


def test_failure_modes_answer_in_the_apis_shape(fake) -> None:
    fake.fail("429")
    assert recognize(fake, wav_with_text("hi"))["code"] == 4006
    fake.fail("500")
    assert recognize(fake, wav_with_text("hi"))["code"] == 5001

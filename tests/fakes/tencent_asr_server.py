"""A fake of Tencent Cloud ASR flash recognition: POST /asr/flash/v1/<appid>?<query> with the audio
as the body. There is no official PyPI client for this API (Tencent's speech SDK is a git checkout,
and Dify vendors its flash_recognizer.py); tests/unit/runtime/test_tencent_asr_fake.py checks the
fake with a client that follows that recognizer's algorithm step by step.

Auth, as Tencent documents it (https://cloud.tencent.com/document/api/1093/52097, 签名生成): the
`Authorization` header is base64(HMAC-SHA1(secret_key, "POST" + host + path + "?" + the query sorted
by name)); the fake recomputes it from the request's Host header, path and raw query with the
official `tencentcloud-sdk-python-common` signer (`Sign.sign`, HmacSHA1), not our adapter's. A
query without a required parameter, or with an engine_type or voice_format the API lacks, is code
4001 before the signature is read; a wrong signature, an unknown secretid or a timestamp more than
three minutes off is code 4002. Every
answer is HTTP 200 `{code, message, request_id, ...}`; the text recognised is what the WAV says
(`wav_with_text`), so a test can tell the audio went through."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tencentcloud.common.sign import Sign

from tests.fakes.base import FakeServer, Reply, Request, text_in_wav, wav_with_text
from tests.fakes.spec import FakeSpec, Refusal, aim_base_url

APP_ID = "1259228442"
SECRET_ID = "AKIDfake-asr-secret-id"
SECRET_KEY = "fake-asr-secret-key"
SIGNATURE_WINDOW = 180  # seconds a timestamp may be off
MAX_AUDIO = 100 * 1024 * 1024
REQUIRED = ("secretid", "engine_type", "voice_format", "timestamp")
ENGINES = {
    "8k_zh", "8k_en", "16k_zh", "16k_zh-PY", "16k_yue", "16k_en", "16k_ja", "16k_ko", "16k_vi",
    "16k_ms", "16k_id", "16k_fil", "16k_th", "16k_pt", "16k_tr", "16k_ar", "16k_es", "16k_hi",
    "16k_fr", "16k_de", "16k_zh_dialect",
}  # fmt: skip
FORMATS = {"wav", "pcm", "ogg-opus", "speex", "silk", "mp3", "m4a", "aac", "amr"}
# What the first bytes of a file in that format are (the others are not checked).
MAGIC = {"wav": (b"RIFF",), "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3"), "ogg-opus": (b"OggS",)}
STATUS_CODES = {400: 4001, 401: 4002, 404: 4001, 429: 4006, 500: 5001}
UNSIGNED = "鉴权失败"


def signature(secret_key: str, method: str, host: str, path: str, query: str) -> str:
    """The flash API's Authorization: base64(HMAC-SHA1(secret_key, method + host + path + "?" +
    the query's name=value pairs sorted by name, values decoded))."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    text = f"{method.upper()}{host}{path}?" + "&".join(f"{k}={v}" for k, v in pairs)
    return Sign.sign(secret_key, text, "HmacSHA1")


class TencentASRFake(FakeServer):
    def __init__(
        self, app_id: str = APP_ID, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY
    ) -> None:
        super().__init__(api_key=secret_id)
        self.app_id = app_id
        self.secret_key = secret_key
        self._raw_query = threading.local()
        self._refused = threading.local()  # what `authorized` refused, for `unauthorized`
        self.route("POST", "/asr/flash/v1/{appid}", self.recognize)

    def _handle(self, http: Any) -> None:
        # The base parses the query without its blank values; the signature covers them all.
        self._raw_query.value = urlsplit(http.path).query
        super()._handle(http)

    def _query(self) -> list[tuple[str, str]]:
        return parse_qsl(getattr(self._raw_query, "value", ""), keep_blank_values=True)

    # --- auth and errors ------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        self._refused.reply = self._malformed()
        if self._refused.reply is None and not self._signed(request):
            self._refused.reply = self.fault(4002, UNSIGNED)
        return self._refused.reply is None

    def _malformed(self) -> Reply | None:
        """A query the API refuses before it reads the signature."""
        query = dict(self._query())
        missing = [name for name in REQUIRED if not query.get(name)]
        if missing:
            return self.fault(4001, f"参数不合法: 缺少参数 {missing[0]}")
        if query["engine_type"] not in ENGINES:
            return self.fault(4001, f"参数不合法: engine_type {query['engine_type']}")
        if query["voice_format"] not in FORMATS:
            return self.fault(4001, f"参数不合法: voice_format {query['voice_format']}")
        return None

    def _signed(self, request: Request) -> bool:
        query = dict(self._query())
        if query["secretid"] != self.api_key or not query["timestamp"].isdigit():
            return False
        if abs(time.time() - int(query["timestamp"])) > SIGNATURE_WINDOW:
            return False
        expected = signature(
            self.secret_key,
            request.method,
            request.header("host"),
            request.path,
            getattr(self._raw_query, "value", ""),
        )
        return request.header("authorization") == expected

    def fault(self, code: int, message: str) -> Reply:
        return Reply(200, {"code": code, "message": message, "request_id": str(uuid.uuid4())})

    def unauthorized(self) -> Reply:
        reply, self._refused.reply = getattr(self._refused, "reply", None), None
        return reply or self.fault(4002, UNSIGNED)

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        return self.fault(STATUS_CODES.get(status, 5001), message)

    def presented_key(self, request: Request) -> tuple[str, str]:
        return (request.query.get("secretid") or [""])[0], request.header("authorization")

    # --- the API ------------------------------------------------------------------------------

    def recognize(self, request: Request) -> Reply:
        if request.params["appid"] != self.app_id:
            return self.fault(4003, "AppID 服务未开通, 请在控制台开通服务")
        voice = dict(self._query())["voice_format"]
        if not request.body:
            return self.fault(4012, "音频数据为空")
        if len(request.body) > MAX_AUDIO:
            return self.fault(4011, "音频数据太大")
        if voice in MAGIC and not request.body.startswith(MAGIC[voice]):
            return self.fault(4007, "音频解码失败, 请检查上传音频数据格式与调用参数一致")
        text = text_in_wav(request.body) if voice == "wav" else ""
        duration = self._duration_ms(request.body) if voice == "wav" else 0
        channel = {
            "channel_id": 0,
            "text": text,
            "sentence_list": [
                {"text": text, "start_time": 0, "end_time": duration, "speaker_id": 0}
            ]
            if text
            else [],
        }
        return Reply(
            200,
            {
                "request_id": str(uuid.uuid4()),
                "code": 0,
                "message": "",
                "audio_duration": duration,
                "flash_result": [channel],
            },
        )

    @staticmethod
    def _duration_ms(audio: bytes) -> int:
        """A PCM WAV's length: its data chunk's bytes over the byte rate in its fmt chunk."""
        fmt = audio.find(b"fmt ")
        data = audio.find(b"data")
        if fmt < 0 or data < 0:
            return 0
        byte_rate = int.from_bytes(audio[fmt + 16 : fmt + 20], "little")
        size = int.from_bytes(audio[data + 4 : data + 8], "little")
        return round(size * 1000 / byte_rate) if byte_rate else 0


def serve(credentials: Mapping[str, str], models: Mapping[str, str]) -> TencentASRFake:
    return TencentASRFake(
        app_id=credentials["app_id"],
        secret_id=credentials["secret_id"],
        secret_key=credentials["secret_key"],
    )


def query_sign_in(
    credentials: Mapping[str, str], method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """Signed in as the flash API wants: the Authorization header signs the URL's host, path and
    sorted query (the query carries secretid and timestamp itself)."""
    parts = urlsplit(url)
    sign = signature(credentials["secret_key"], method, parts.netloc, parts.path, parts.query)
    return {**headers, "Content-Type": "application/octet-stream", "Authorization": sign}


FLASH = f"/asr/flash/v1/{APP_ID}?"
SIGNED = "secretid=sample-tencent-secret_id-7f3a&timestamp=1500000000"  # the catalog sample's id
WAV = wav_with_text("hi")
# cloud.tencent.com/document/api/1093/52097: the query parameters, engine types and formats,
# the signature, and the error codes (4001 参数不合法, 4002 鉴权失败), all as HTTP 200 bodies.
SPEC = FakeSpec(
    family="tencent_asr",
    client="none on PyPI",  # a replay of Dify's flash_recognizer.py checks it
    serve=serve,
    aim=aim_base_url(),
    samples=lambda: {"app_id": APP_ID},
    sign_in=query_sign_in,
    refusals=(
        Refusal(
            "no engine_type",
            FLASH + "secretid=x&timestamp=1&voice_format=wav",
            WAV,
            status=200,
            says='"code": 4001',
            model_type="speech2text",
        ),
        Refusal(
            "an engine_type the API lacks",
            FLASH + "secretid=x&timestamp=1&voice_format=wav&engine_type=48k_zh",
            WAV,
            status=200,
            says='"code": 4001',
            model_type="speech2text",
        ),
        Refusal(
            "a voice_format the API lacks",
            FLASH + "secretid=x&timestamp=1&voice_format=flac&engine_type=16k_zh",
            WAV,
            status=200,
            says='"code": 4001',
            model_type="speech2text",
        ),
        Refusal(
            "no secretid",
            FLASH + "timestamp=1&voice_format=wav&engine_type=16k_zh",
            WAV,
            status=200,
            says='"code": 4001',
            model_type="speech2text",
        ),
        Refusal(
            "a timestamp long past, signed",
            FLASH + SIGNED + "&voice_format=wav&engine_type=16k_zh",
            WAV,
            status=200,
            says='"code": 4002',
            model_type="speech2text",
        ),
        Refusal(
            "a wrong signature",
            FLASH + SIGNED + "&voice_format=wav&engine_type=16k_zh",
            WAV,
            status=200,
            says='"code": 4002',
            headers={"Authorization": "bm90IGEgc2lnbmF0dXJl"},
            model_type="speech2text",
        ),
        Refusal(
            "no Authorization",
            FLASH + SIGNED + "&voice_format=wav&engine_type=16k_zh",
            WAV,
            status=200,
            says='"code": 4002',
            headers={"Authorization": None},
            model_type="speech2text",
        ),
    ),
)

"""What the service serves cannot run a backend's script on our origin: a tts invocation's audio is
served inline only as a known audio type (else as an opaque attachment), and every response
carries the Content-Security-Policy of config/security.py (the browser tests in tests/e2e check
that the pages work under it)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from config.security import POLICY
from invocations.api import SAFE_AUDIO_TYPES, audio_type
from providers.models import CheckStatus, ProviderCredential
from tenants.models import Role
from tests.fakes.base import text_in_wav
from tests.fakes.openai_server import HTML_SPEECH, OpenAIFake
from tests.jobs import finished

KEY = "sk-fake-openai-key-0002"


@pytest.fixture(scope="module")
def openai_fake():
    with OpenAIFake(api_key=KEY) as server:
        yield server


@pytest.fixture
def fake(openai_fake):
    openai_fake.reset()
    return openai_fake


def configure(client, fake) -> None:
    response = client.post(
        "/api/v1/model-providers/openai/credentials",
        {"credentials": {"openai_api_key": KEY, "openai_api_base": fake.url}},
        format="json",
    )
    assert response.status_code == 201, response.content
    deadline = time.monotonic() + 15
    while ProviderCredential.objects.get(pk=response.json()["id"]).status == CheckStatus.VALIDATING:
        assert time.monotonic() < deadline, "the validation queued on save never finished"
        time.sleep(0.05)


def speak(client, audio_format: str) -> dict:
    response = client.post(
        "/api/v1/invocations",
        {
            "model_type": "tts",
            "provider": "openai",
            "model": "tts-1",
            "input": {"text": "good night", "voice": "nova", "format": audio_format},
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    done = finished(client, f"/api/v1/invocations/{response.json()['id']}")
    assert done["status"] == "succeeded", done
    return done


# --- the tts audio ------------------------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker_thread")
def test_html_from_a_tts_backend_is_served_as_an_opaque_attachment(key_client, fake) -> None:
    client = key_client()
    configure(client, fake)
    fake.fail("html_speech")
    done = speak(client, "mp3")
    assert done["result"]["content_type"].startswith("text/html")  # what the backend claimed

    audio = client.get(done["audio_url"])
    assert audio.status_code == 200
    assert audio["Content-Type"] == "application/octet-stream"
    assert audio["Content-Disposition"].startswith("attachment")
    assert audio["Content-Disposition"].endswith('.bin"')
    assert audio["X-Content-Type-Options"] == "nosniff"
    assert audio["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"".join(audio.streaming_content) == HTML_SPEECH  # still the bytes it sent


@pytest.mark.usefixtures("celery_worker_thread")
def test_mp3_audio_is_served_inline_as_audio_mpeg(key_client, fake) -> None:
    client = key_client()
    configure(client, fake)
    done = speak(client, "mp3")
    audio = client.get(done["audio_url"])
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/mpeg"
    assert audio["Content-Disposition"].startswith("inline")
    assert audio["X-Content-Type-Options"] == "nosniff"
    assert text_in_wav(b"".join(audio.streaming_content)) == "nova: good night"


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("audio/mpeg", "audio/mpeg"),
        ("Audio/WAV; rate=24000", "audio/wav"),
        ("audio/ogg;codecs=opus", "audio/ogg"),
        ("audio/x-wav", "audio/x-wav"),
        ("audio/pcm", "audio/pcm"),
        ("text/html; charset=utf-8", None),
        ("image/svg+xml", None),
        ("application/xhtml+xml", None),
        ("audio/mpeg, text/html", None),
        ("", None),
        (None, None),
    ],
)
def test_only_known_audio_types_are_served_as_such(stored, served) -> None:
    assert audio_type(stored) == served


def test_the_services_audio_formats_are_all_known() -> None:
    from invocations import services

    assert set(services.AUDIO_TYPES.values()) <= SAFE_AUDIO_TYPES


# --- the Content-Security-Policy ----------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_and_response_carries_the_policy(client, key_client, make_member, tenant):
    anonymous = [
        reverse("login"),
        "/admin/login/",
        "/api/docs/",
        "/api/docs/?script",
        "/api/schema/",
        "/healthz",
        "/static/css/app.css",
        "/static/js/app.js",
        "/no-such-page",
    ]
    for url in anonymous:  # error answers included (/healthz is a 503 without a worker)
        response = client.get(url)
        assert response["Content-Security-Policy"] == POLICY, url

    client.force_login(make_member(tenant, Role.OWNER))
    pages = [
        reverse("settings-providers"),
        reverse("settings-defaults"),
        reverse("settings-usage"),
        reverse("settings-api-keys"),
        reverse("settings-members"),
        reverse("settings-provider-setup", args=["openai"]),
        reverse("settings-provider-card", args=["openai"]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Security-Policy"] == POLICY, url

    api = key_client().get("/api/v1/tenants/current")
    assert api.status_code == 200
    assert api["Content-Security-Policy"] == POLICY


def test_the_policy_allows_no_inline_script_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in POLICY


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.parametrize(
    "template",
    sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")),
    ids=lambda p: str(p.relative_to(Path(settings.BASE_DIR, "templates"))),
)
def test_templates_have_nothing_inline_the_policy_refuses(template: Path) -> None:
    """The CSP would refuse these in the browser; the e2e tests see the pages they visit, this
    sees every template (fragments and admin overrides included)."""
    source = re.sub(
        r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", "", template.read_text(), flags=re.S
    )
    for pattern, what in INLINE:
        assert not pattern.search(source), f"{template.name} has {what}"

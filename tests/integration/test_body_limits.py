"""Request bodies: POST /api/v1/invocations reads up to INVOCATION_MAX_BODY (a transcription's
25 MB of audio in base64), everything else Django's 2.5 MB; past either, the API answers its JSON
413, never an HTML page. Bodies are made here, none is committed."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings as django_settings

from invocations import codec
from invocations.models import Invocation
from providers import services
from tenants.models import Role

pytestmark = pytest.mark.django_db

DJANGO_LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB
OVER_DJANGO_LIMIT = DJANGO_LIMIT + 1024


@pytest.fixture
def client(tenant, key_client):
    services.credential_create(
        tenant=tenant,
        provider="openai",
        name="main",
        values={"openai_api_key": "sk-test-000000000000"},
        actor=None,
    )
    return key_client()


def _transcription(audio: bytes) -> dict:
    return {
        "model_type": "speech2text",
        "provider": "openai",
        "model": "whisper-1",
        "input": {"audio": base64.b64encode(audio).decode(), "filename": "a.wav"},
    }


def _is_json_413(response) -> bool:
    return response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_django_keeps_its_small_limit_outside_invocations() -> None:
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == DJANGO_LIMIT
    assert django_settings.INVOCATION_MAX_BODY > 4 * codec.MAX_AUDIO_BYTES / 3


def test_a_transcription_of_25_mb_is_accepted(client) -> None:
    body = _transcription(b"\x01" * codec.MAX_AUDIO_BYTES)
    response = client.post("/api/v1/invocations", body, format="json")
    assert response.status_code == 202, response.content[:300]
    assert Invocation.objects.get().model_type == "speech2text"


def test_audio_past_25_mb_is_a_field_error(client) -> None:
    body = _transcription(b"\x01" * (codec.MAX_AUDIO_BYTES + 1))
    response = client.post("/api/v1/invocations", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["input.audio"] == ["The audio is larger than 25 MB."]


def test_an_invocation_body_past_its_limit_is_a_json_413(client, settings) -> None:
    settings.INVOCATION_MAX_BODY = 4096
    response = client.post("/api/v1/invocations", _transcription(b"\x01" * 4096), format="json")
    assert _is_json_413(response)
    assert not Invocation.objects.exists()


def test_other_endpoints_keep_the_small_limit_and_answer_json(client) -> None:
    big = {"name": "x" * OVER_DJANGO_LIMIT}
    assert _is_json_413(client.post("/api/v1/api-keys", big, format="json"))
    form = client.post("/api/v1/api-keys", big)  # multipart, as a form would send it
    assert _is_json_413(form)


def test_a_session_form_past_the_limit_is_json_too(session_client, tenant) -> None:
    """The CSRF check reads a form body, Django's limit applies there: still the API's JSON."""
    browser = session_client(tenant, Role.OWNER)
    form = "name=" + "x" * OVER_DJANGO_LIMIT
    response = browser.generic(
        "POST", "/api/v1/api-keys", form, content_type="application/x-www-form-urlencoded"
    )
    assert _is_json_413(response)
    # Outside DRF (an unknown path, where Django's CSRF middleware reads the form): the same.
    response = browser.generic(
        "POST", "/api/v1/nope", form, content_type="application/x-www-form-urlencoded"
    )
    assert response["Content-Type"] == "application/json"
    assert _is_json_413(response)


def test_a_host_not_allowed_is_a_json_400_on_the_api(client) -> None:
    response = client.get("/api/v1/tenants/current", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    page = client.get("/settings/", HTTP_HOST="evil.example")
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")

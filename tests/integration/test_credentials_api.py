"""Provider credentials over the API: field errors, encrypted at rest, obfuscated in every response,
the unchanged-hint round trip, several named credentials with one active."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from providers import credentials
from providers.models import AuditLogEntry, ProviderCredential
from tenants import crypto

pytestmark = pytest.mark.django_db

SECRET = "sk-proj-Zq81vHn3kL0pWm5sTt7uYb9d"
URL = "/api/v1/model-providers/openai/credentials"


@pytest.fixture
def client(key_client):
    return key_client()


def _create(client, name="main", secret=SECRET, **extra):
    body = {"name": name, "credentials": {"openai_api_key": secret, **extra}}
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _raw_config(credential_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT config FROM providers_providercredential WHERE id = %s", [credential_id]
        )
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


def test_a_saved_secret_is_encrypted_at_rest(client) -> None:
    created = _create(client, openai_organization="org-acme")
    stored = _raw_config(created["id"])
    assert SECRET not in stored
    assert SECRET[3:-4] not in stored
    config = json.loads(stored)
    assert crypto.is_envelope(config["openai_api_key"])
    assert config["openai_organization"] == "org-acme"  # non-secrets stay readable
    credential = ProviderCredential.objects.get(pk=created["id"])
    assert credentials.reveal(credential)["openai_api_key"] == SECRET


def test_secrets_are_obfuscated_in_every_response(client) -> None:
    created = _create(client)
    hint = credentials.obfuscate(SECRET)
    assert created["credentials"]["openai_api_key"] == hint
    assert created["status"] == "validating"  # saving queued a check against the backend
    responses = [
        client.get(URL),
        client.get(f"{URL}/{created['id']}"),
        client.get("/api/v1/model-providers/openai"),
        client.get("/api/v1/model-providers"),
        client.get("/api/v1/model-providers/openai/models"),
        client.get("/api/v1/models"),
        client.get("/api/v1/audit-log"),
        client.patch(f"{URL}/{created['id']}", {"name": "renamed"}, format="json"),
    ]
    for response in responses:
        assert response.status_code == 200, response.content
        assert SECRET not in response.content.decode()
        assert SECRET[3:-4] not in response.content.decode()


def test_sending_the_hint_back_keeps_the_stored_secret(client) -> None:
    created = _create(client)
    hint = created["credentials"]["openai_api_key"]
    response = client.put(
        f"{URL}/{created['id']}",
        {"name": "main", "credentials": {"openai_api_key": hint, "openai_organization": "org-2"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    credential = ProviderCredential.objects.get(pk=created["id"])
    assert credentials.reveal(credential)["openai_api_key"] == SECRET
    assert credential.config["openai_organization"] == "org-2"

    response = client.put(
        f"{URL}/{created['id']}",
        {"name": "main", "credentials": {"openai_api_key": "sk-a-brand-new-key-0000"}},
        format="json",
    )
    credential.refresh_from_db()
    assert credentials.reveal(credential)["openai_api_key"] == "sk-a-brand-new-key-0000"
    assert response.json()["credentials"]["openai_api_key"] == "sk-…0000"


def test_patch_changes_only_what_it_sends(client) -> None:
    created = _create(client, openai_organization="org-1")
    response = client.patch(
        f"{URL}/{created['id']}",
        {"credentials": {"openai_api_base": "https://gateway.example/v1"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    credential = ProviderCredential.objects.get(pk=created["id"])
    values = credentials.reveal(credential)
    assert values["openai_api_key"] == SECRET
    assert values["openai_organization"] == "org-1"
    assert values["openai_api_base"] == "https://gateway.example/v1"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({}, "openai_api_key", "required"),
        ({"openai_api_key": SECRET, "mystery": "x"}, "mystery", "Unknown field"),
        ({"openai_api_key": SECRET, "api_protocol": "soap"}, "api_protocol", "not a valid choice"),
        ({"openai_api_key": "k" * 600}, "openai_api_key", "at most 512"),
        ({"openai_api_key": SECRET, "openai_api_base": "openai.com"}, "openai_api_base", "URL"),
    ],
)
def test_bad_forms_are_400_with_field_errors_and_save_nothing(client, values, field, message):
    response = client.post(URL, {"name": "x", "credentials": values}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in " ".join(error["fields"][field])
    assert not ProviderCredential.objects.exists()


def test_a_body_that_is_not_a_form_is_a_400(client) -> None:
    for body in [{"name": "x"}, {"name": "x", "credentials": "sk-1"}, {"credentials": []}]:
        response = client.post(URL, body, format="json")
        assert response.status_code == 400
        assert "credentials" in response.json()["error"]["fields"]


def test_a_form_with_thousands_of_fields_gets_one_short_error(client) -> None:
    values = {f"field{n}": "x" for n in range(100_000)}
    response = client.post(URL, {"name": "x", "credentials": values}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "credentials": ["At most 100 fields: this has 100000."]
    }
    assert len(response.content) < 1000  # not an error per unknown field (4 MB)


def test_unknown_provider_is_404(client) -> None:
    response = client.post(
        "/api/v1/model-providers/nope/credentials", {"credentials": {}}, format="json"
    )
    assert response.status_code == 404


def test_a_customizable_only_provider_takes_no_provider_credential(client) -> None:
    response = client.post(
        "/api/v1/model-providers/xinference/credentials",
        {"credentials": {"server_url": "http://x:9997"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "configured_per_model"


def test_several_named_credentials_one_active(client) -> None:
    first = _create(client, "personal")
    second = _create(client, "team", secret="sk-team-key-000000001111")
    assert (first["is_active"], second["is_active"]) == (True, False)
    assert (
        client.post(
            URL, {"name": "team", "credentials": {"openai_api_key": "sk-x"}}, format="json"
        ).status_code
        == 409
    )

    activated = client.post(f"{URL}/{second['id']}/activate")
    assert activated.json()["is_active"] is True
    listed = {c["name"]: c["is_active"] for c in client.get(URL).json()}
    assert listed == {"personal": False, "team": True}
    provider = client.get("/api/v1/model-providers/openai").json()
    assert provider["active_credential_id"] == second["id"]
    assert provider["credential_count"] == 2

    assert client.delete(f"{URL}/{second['id']}").status_code == 204
    assert ProviderCredential.objects.get(pk=first["id"]).is_active  # the other takes over
    assert client.delete(f"{URL}/{first['id']}").status_code == 204
    provider = client.get("/api/v1/model-providers/openai").json()
    assert (provider["configured"], provider["status"]) == (False, "unconfigured")


def test_the_audit_log_records_changes_without_secrets(client) -> None:
    created = _create(client)
    client.patch(
        f"{URL}/{created['id']}",
        {"credentials": {"openai_api_key": "sk-rotated-0000000"}},
        format="json",
    )
    entries = AuditLogEntry.objects.order_by("id")
    assert [e.action for e in entries] == ["credential.create", "credential.update"]
    assert entries[1].changes == {"openai_api_key": "(secret changed)"}
    assert entries[0].api_key is not None
    dump = json.dumps([e.changes for e in entries])
    assert SECRET not in dump
    assert "sk-rotated" not in dump

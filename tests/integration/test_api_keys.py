"""/api/v1/api-keys: created once, stored as a hash, revocable, last use recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import apikeys, services
from tenants.models import ApiKey, Role

pytestmark = pytest.mark.django_db


def test_a_created_key_is_returned_once_and_then_authenticates(tenant, key_client) -> None:
    admin = key_client(scopes=["read", "write", "invoke"])
    created = admin.post("/api/v1/api-keys", {"name": "CI", "scopes": ["invoke"]}, format="json")
    assert created.status_code == 201
    body = created.json()
    raw_key = body["key"]
    assert apikeys.is_well_formed(raw_key)
    assert body["prefix"] == apikeys.visible_prefix(raw_key)
    assert body["scopes"] == ["invoke"]

    listed = admin.get("/api/v1/api-keys").json()
    assert raw_key not in str(listed)
    assert {"key", "key_hash", "hash"}.isdisjoint(listed[0])
    detail = admin.get(f"/api/v1/api-keys/{body['id']}").json()
    assert "key" not in detail

    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert admin.get("/api/v1/tenants/current").json()["slug"] == tenant.slug


def test_only_the_sha256_of_a_key_is_stored(tenant, key_client) -> None:
    body = key_client().post("/api/v1/api-keys", {"name": "x"}, format="json").json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey WHERE id = %s", [body["id"]])
        row = [str(v) for v in cursor.fetchone()]
    assert not any(body["key"] in value for value in row)
    assert ApiKey.objects.get(pk=body["id"]).key_hash == apikeys.hash_key(body["key"])


def test_a_revoked_key_is_refused(tenant, key_client, api_client) -> None:
    admin = key_client()
    body = admin.post("/api/v1/api-keys", {"name": "temp"}, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert api_client.get("/api/v1/tenants/current").status_code == 200

    revoked = admin.post(f"/api/v1/api-keys/{body['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert revoked.json()["is_active"] is False

    refused = api_client.get("/api/v1/tenants/current")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert refused["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer nope", "Bearer mpk_AAAAAAAA_" + "B" * 40, "Bearer  "]
)
def test_unknown_or_malformed_keys_are_401(api_client, header) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/tenants/current")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated"}


def test_no_credentials_is_401(api_client) -> None:
    response = api_client.get("/api/v1/api-keys")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_last_used_at_is_recorded_but_not_rewritten_on_every_request(tenant, key_client) -> None:
    client = key_client()
    key = ApiKey.objects.get(tenant=tenant)
    assert key.last_used_at is None

    client.get("/api/v1/tenants/current")
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None

    client.get("/api/v1/tenants/current")
    key.refresh_from_db()
    assert key.last_used_at == first_use  # within the resolution: no write

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=5))
    services.api_keys_changed()  # a write behind the service's back must say so
    client.get("/api/v1/tenants/current")
    key.refresh_from_db()
    assert key.last_used_at > first_use


def test_scopes_are_checked(tenant, key_client) -> None:
    response = key_client().post(
        "/api/v1/api-keys", {"name": "x", "scopes": ["root"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"scopes.0": ['"root" is not a valid choice.']}

    empty = key_client().post("/api/v1/api-keys", {"name": "x", "scopes": []}, format="json")
    assert empty.status_code == 400

    missing_name = key_client().post("/api/v1/api-keys", {}, format="json")
    assert missing_name.status_code == 400
    assert "name" in missing_name.json()["error"]["fields"]


def test_a_key_cannot_mint_a_key_with_more_scopes_than_its_own(tenant, key_client) -> None:
    writer = key_client(scopes=["read", "write"])
    escalate = writer.post("/api/v1/api-keys", {"name": "x", "scopes": ["invoke"]}, format="json")
    assert escalate.status_code == 403
    same = writer.post("/api/v1/api-keys", {"name": "x", "scopes": ["read"]}, format="json")
    assert same.status_code == 201


@pytest.mark.parametrize(
    ("scopes", "can_list", "can_create"),
    [(["invoke"], False, False), (["read"], True, False), (["read", "write"], True, True)],
)
def test_key_scopes_grant_what_they_name(key_client, scopes, can_list, can_create) -> None:
    client = key_client(scopes=scopes)
    assert client.get("/api/v1/api-keys").status_code == (200 if can_list else 403)
    created = client.post("/api/v1/api-keys", {"name": "x", "scopes": scopes}, format="json")
    assert created.status_code == (201 if can_create else 403)


@pytest.mark.parametrize(
    ("role", "can_create"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.EDITOR, False), (Role.MEMBER, False)],
)
def test_roles_decide_who_manages_keys(tenant, session_client, role, can_create) -> None:
    client = session_client(tenant, role)
    assert client.get("/api/v1/api-keys").status_code == 200  # everyone reads settings
    created = client.post("/api/v1/api-keys", {"name": "x"}, format="json")
    assert created.status_code == (201 if can_create else 403)
    if can_create:
        assert ApiKey.objects.get(pk=created.json()["id"]).created_by == client.user
        assert created.json()["created_by"] == client.user.username


def test_a_known_key_costs_no_query_and_a_revoked_one_is_refused_at_once(tenant) -> None:
    api_key, raw_key = services.api_key_create(tenant=tenant, name="busy", scopes=["invoke"])
    assert services.api_key_authenticate(raw_key=raw_key) == api_key
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert services.api_key_authenticate(raw_key=raw_key) == api_key
    assert list(queries) == []
    services.api_key_revoke(api_key=api_key)
    assert services.api_key_authenticate(raw_key=raw_key) is None

"""create_tenant and seed_demo, as an operator and the run script call them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tenants import apikeys
from tenants.models import ApiKey, Membership, Role, Tenant

pytestmark = pytest.mark.django_db


def _key_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("api_key: ")]
    assert len(lines) == 1
    return lines[0].removeprefix("api_key: ")


def test_create_tenant_prints_a_working_key_on_a_line_of_its_own(capsys, django_user_model):
    call_command("create_tenant", "Acme Corp", "--owner-email", "ada@example.com")
    output = capsys.readouterr().out
    raw_key = _key_line(output)
    assert apikeys.is_well_formed(raw_key)

    tenant = Tenant.objects.get(slug="acme-corp")
    owner = django_user_model.objects.get(email="ada@example.com")
    assert Membership.objects.get(tenant=tenant, user=owner).role == Role.OWNER
    assert "changepassword" in output  # a new owner is told how to get a password

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get("/api/v1/tenants/current").json()["slug"] == "acme-corp"


def test_create_tenant_reuses_an_existing_owner(capsys, django_user_model) -> None:
    existing = django_user_model.objects.create_user(username="ada", email="ada@example.com")
    call_command("create_tenant", "Second", "--owner-email", "ADA@example.com")
    assert "changepassword" not in capsys.readouterr().out
    assert Membership.objects.get(tenant__slug="second").user == existing


def test_seed_demo_is_idempotent(capsys, django_user_model) -> None:
    raw_key = apikeys.new_raw_key()
    for _ in range(2):
        call_command("seed_demo", "--password", "s3cret-pass", "--api-key", raw_key)
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert ApiKey.objects.filter(key_hash=apikeys.hash_key(raw_key)).count() == 1
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("s3cret-pass")

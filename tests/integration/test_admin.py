"""Django admin for operators: workspaces get key pairs, API keys show once, hashes never."""

from __future__ import annotations

import pytest

from providers.models import AuditLogEntry
from tenants import apikeys
from tenants.models import ApiKey, Membership, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(admin_client):
    return admin_client


def test_admin_index_and_lists_render(operator, tenant) -> None:
    for url in [
        "/admin/",
        "/admin/tenants/tenant/",
        "/admin/tenants/membership/",
        "/admin/tenants/apikey/",
        f"/admin/tenants/tenant/{tenant.pk}/change/",
    ]:
        assert operator.get(url).status_code == 200, url


def test_adding_a_tenant_in_admin_makes_its_key_pair(operator) -> None:
    response = operator.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Initech",
            "slug": "initech",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content
    tenant = Tenant.objects.get(slug="initech")
    assert "BEGIN PUBLIC KEY" in tenant.public_key
    page = operator.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert "fingerprint" in page
    assert "wrapped_private_key" not in page


def test_a_new_api_key_is_shown_once_and_its_hash_never(operator, tenant) -> None:
    response = operator.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.pk, "name": "ops", "scopes": ["read", "invoke"]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.get(name="ops")
    page = response.content.decode()
    raw_key = next(
        word.split('"')[0] for word in page.split('value="')[1:] if word.startswith("mpk_")
    )
    assert apikeys.hash_key(raw_key) == api_key.key_hash
    assert api_key.scopes == ["invoke", "read"]

    change_page = operator.get(f"/admin/tenants/apikey/{api_key.pk}/change/").content.decode()
    list_page = operator.get("/admin/tenants/apikey/").content.decode()
    for later in (change_page, list_page):
        assert raw_key not in later
        assert api_key.key_hash not in later
        assert api_key.prefix in later


def test_the_revoke_action_revokes(operator, tenant) -> None:
    operator.post(
        "/admin/tenants/apikey/add/", {"tenant": tenant.pk, "name": "old", "scopes": ["read"]}
    )
    api_key = ApiKey.objects.get(name="old")
    operator.post("/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_members_can_be_added_in_admin(operator, tenant, django_user_model) -> None:
    user = django_user_model.objects.create_user(username="bob")
    response = operator.post(
        "/admin/tenants/membership/add/", {"user": user.pk, "tenant": tenant.pk, "role": "editor"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=user, tenant=tenant).role == "editor"


def test_the_admin_keeps_a_workspaces_last_owner(operator, tenant, django_user_model) -> None:
    """As the members page does: the last owner is neither demoted, moved nor deleted."""
    owner = django_user_model.objects.create_user(username="olga")
    other = Tenant.objects.create(name="Other", slug="other")
    mine = Membership.objects.create(user=owner, tenant=tenant, role="owner")
    Membership.objects.filter(tenant=tenant).exclude(pk=mine.pk).update(role="member")
    url = f"/admin/tenants/membership/{mine.pk}/change/"
    for change in ({"role": "member", "tenant": tenant.pk}, {"role": "owner", "tenant": other.pk}):
        response = operator.post(url, {"user": owner.pk, **change})
        assert response.status_code == 200  # the form again, with the error
        assert "keeps at least one owner" in response.content.decode()
    refused = operator.get(f"/admin/tenants/membership/{mine.pk}/delete/", follow=True)
    assert refused.redirect_chain[-1][0] == url  # back to its page, saying why
    assert "keeps at least one owner" in refused.content.decode()
    for confirmed in ({}, {"post": "yes"}):
        refused = operator.post(
            "/admin/tenants/membership/",
            {"action": "delete_selected", "_selected_action": [mine.pk], **confirmed},
            follow=True,
        )
        page = refused.content.decode()
        assert "keeps at least one owner" in page
        assert "permission" not in page
    mine.refresh_from_db()
    assert (mine.tenant_id, mine.role) == (tenant.pk, "owner")
    # With a second owner, the first may step down.
    Membership.objects.create(
        user=django_user_model.objects.create_user("pia"), tenant=tenant, role="owner"
    )
    response = operator.post(url, {"user": owner.pk, "role": "member", "tenant": tenant.pk})
    assert response.status_code == 302


def test_member_changes_in_admin_are_audited_with_the_operators_name(
    operator, tenant, django_user_model
) -> None:
    """As on the members page: added, role changed, removed, and the same through the
    workspace's inline, each an audit entry naming the operator."""
    root = django_user_model.objects.get(username="admin")
    bob = django_user_model.objects.create_user(username="bob")
    operator.post(
        "/admin/tenants/membership/add/", {"user": bob.pk, "tenant": tenant.pk, "role": "editor"}
    )
    membership = Membership.objects.get(user=bob, tenant=tenant)
    url = f"/admin/tenants/membership/{membership.pk}/change/"
    response = operator.post(url, {"user": bob.pk, "tenant": tenant.pk, "role": "member"})
    assert response.status_code == 302
    operator.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"})
    assert not Membership.objects.filter(user=bob).exists()

    cleo = django_user_model.objects.create_user(username="cleo")
    kept = list(Membership.objects.filter(tenant=tenant).select_related("user"))
    form = {
        "name": tenant.name,
        "slug": tenant.slug,
        "memberships-TOTAL_FORMS": len(kept) + 1,
        "memberships-INITIAL_FORMS": len(kept),
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    rows = [(m.pk, m.user_id, m.role) for m in kept] + [("", cleo.pk, "admin")]
    for n, (pk, user, role) in enumerate(rows):
        prefix = f"memberships-{n}-"
        form.update({f"{prefix}id": pk, f"{prefix}tenant": tenant.pk,
                     f"{prefix}user": user, f"{prefix}role": role})  # fmt: skip
    response = operator.post(f"/admin/tenants/tenant/{tenant.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    cleos = Membership.objects.get(user=cleo)
    assert cleos.role == "admin"
    # Removed through the inline.
    n = len(kept)
    form.update({f"memberships-{n}-id": cleos.pk, f"memberships-{n}-DELETE": "on",
                 "memberships-INITIAL_FORMS": n + 1})  # fmt: skip
    response = operator.post(f"/admin/tenants/tenant/{tenant.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Membership.objects.filter(user=cleo).exists()

    entries = AuditLogEntry.objects.filter(tenant=tenant).order_by("pk")
    assert [(e.action, e.target, e.changes, e.actor_id) for e in entries] == [
        ("member.add", "bob", {"role": "editor"}, root.pk),
        ("member.role", "bob", {"role": ["editor", "member"]}, root.pk),
        ("member.remove", "bob", {"role": "member"}, root.pk),
        ("member.add", "cleo", {"role": "admin"}, root.pk),
        ("member.remove", "cleo", {"role": "admin"}, root.pk),
    ]

"""Settings > API keys and Settings > Members in the browser: who may change what, and the rules
that keep a workspace owned."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tenants import apikeys, services
from tenants.models import ApiKey, Membership, Role

pytestmark = [pytest.mark.django_db]

User = get_user_model()
KEY_RE = re.compile(r"mpk_[A-Za-z0-9]{8}_[A-Za-z0-9]{40}")
READ_ONLY = [Role.EDITOR, Role.MEMBER]
MANAGERS = [Role.OWNER, Role.ADMIN]


@pytest.fixture
def login(client, make_member):
    """`login(tenant, role)`: log the test client in as a new member; returns the user."""

    def do(tenant, role):
        user = make_member(tenant, role)
        client.force_login(user)
        return user

    return do


def membership(tenant, user) -> Membership:
    return Membership.objects.get(tenant=tenant, user=user)


# --- Pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", Role.values)
def test_both_pages_render_for_every_role(client, login, make_member, tenant, role) -> None:
    make_member(tenant, Role.MEMBER)  # someone whose role an owner or admin may change
    login(tenant, role)
    services.api_key_create(tenant=tenant, name="Deploy bot", scopes=["invoke"])
    keys = client.get(reverse("settings-api-keys"))
    members = client.get(reverse("settings-members"))
    assert keys.status_code == members.status_code == 200
    assert "Deploy bot" in keys.content.decode()
    manager = role in MANAGERS
    assert ('id="create-key-form"' in keys.content.decode()) is manager
    assert ('id="invite-form"' in members.content.decode()) is manager
    assert (">Revoke</button>" in keys.content.decode()) is manager
    assert (">Change role</button>" in members.content.decode()) is manager


def test_pages_need_a_login(client, tenant) -> None:
    response = client.get(reverse("settings-api-keys"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# --- API keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", MANAGERS)
def test_a_created_key_is_shown_once(client, login, tenant, role) -> None:
    login(tenant, role)
    response = client.post(
        reverse("settings-api-keys-create"), {"name": "CI", "scopes": ["invoke", "read"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert 'class="secret-once"' in page
    raw_keys = set(KEY_RE.findall(page))
    assert len(raw_keys) == 1
    raw_key = raw_keys.pop()
    key = ApiKey.objects.get(tenant=tenant)
    assert key.key_hash == apikeys.hash_key(raw_key)
    assert key.name == "CI"
    assert key.scopes == ["invoke", "read"]

    assert raw_key not in str(dict(client.session))  # not kept for later
    again = client.get(reverse("settings-api-keys")).content.decode()
    assert raw_key not in again
    assert "secret-once" not in again
    assert key.prefix in again
    assert not KEY_RE.search(again)


def test_a_key_needs_a_scope(client, login, tenant) -> None:
    login(tenant, Role.OWNER)
    response = client.post(reverse("settings-api-keys-create"), {"name": "CI"})
    assert response.status_code == 400
    assert "Choose at least one of the listed scopes." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_key_is_revoked(client, login, tenant) -> None:
    login(tenant, Role.ADMIN)
    key, raw_key = services.api_key_create(tenant=tenant, name="Old", scopes=["read"])
    response = client.post(reverse("settings-api-keys-revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert services.api_key_authenticate(raw_key=raw_key) is None
    page = client.get(reverse("settings-api-keys")).content.decode()
    assert "Revoked" in page
    assert "is revoked and no longer works" in page  # the message after the redirect


@pytest.mark.parametrize("role", READ_ONLY)
def test_read_only_roles_cannot_create_or_revoke_keys(client, login, tenant, role) -> None:
    login(tenant, role)
    key, _ = services.api_key_create(tenant=tenant, name="Keep", scopes=["read"])
    created = client.post(reverse("settings-api-keys-create"), {"name": "x", "scopes": ["read"]})
    revoked = client.post(reverse("settings-api-keys-revoke", args=[key.pk]))
    assert created.status_code == revoked.status_code == 403
    assert ApiKey.objects.filter(tenant=tenant).count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_workspaces_key_is_not_found(client, login, tenant, other_tenant) -> None:
    login(tenant, Role.OWNER)
    theirs, _ = services.api_key_create(tenant=other_tenant, name="Theirs", scopes=["read"])
    assert client.post(reverse("settings-api-keys-revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "Theirs" not in client.get(reverse("settings-api-keys")).content.decode()


def test_get_is_not_allowed_on_the_write_endpoints(client, login, tenant) -> None:
    login(tenant, Role.OWNER)
    key, _ = services.api_key_create(tenant=tenant, name="k", scopes=["read"])
    assert client.get(reverse("settings-api-keys-create")).status_code == 405
    assert client.get(reverse("settings-api-keys-revoke", args=[key.pk])).status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


# --- Members: inviting --------------------------------------------------------------------------


@pytest.mark.parametrize("role", MANAGERS)
def test_managers_add_an_existing_user_by_username(client, login, tenant, role) -> None:
    login(tenant, role)
    bob = User.objects.create_user(username="bob", email="Bob@Example.com", password="pw")
    by_name = client.post(reverse("settings-members-invite"), {"user": "bob", "role": Role.ADMIN})
    assert by_name.status_code == 302
    assert membership(tenant, bob).role == Role.ADMIN
    page = client.get(reverse("settings-members")).content.decode()
    assert "Bob@example.com" in page  # create_user lower-cases the domain
    assert "bob is now a member of this workspace, as Admin." in page


def test_an_address_gets_an_invitation_whether_or_not_it_has_an_account(
    client, login, tenant, mailoutbox
) -> None:
    """Adding by e-mail would tell whether the address has an account: it invites instead."""
    login(tenant, Role.OWNER)
    ann = User.objects.create_user(username="ann", email="ann@example.com", password="pw")
    pages = []
    for address in ("ann@example.com", "nobody@example.com"):
        response = client.post(
            reverse("settings-members-invite"), {"user": address, "role": Role.EDITOR}, follow=True
        )
        assert response.status_code == 200
        pages.append(response.content.decode())
    assert "An invitation to join as Editor was sent to ann@example.com." in pages[0]
    assert "An invitation to join as Editor was sent to nobody@example.com." in pages[1]
    assert not Membership.objects.filter(tenant=tenant, user=ann).exists()
    assert [m.to for m in mailoutbox] == [["ann@example.com"], ["nobody@example.com"]]


def test_adding_an_unknown_user_or_a_member_is_refused_in_the_page(client, login, tenant) -> None:
    login(tenant, Role.OWNER)
    unknown = client.post(
        reverse("settings-members-invite"), {"user": "nobody", "role": Role.MEMBER}
    )
    assert unknown.status_code == 400
    assert "No account has this username." in unknown.content.decode()
    assert 'value="nobody"' in unknown.content.decode()  # the form keeps the input

    existing = User.objects.create_user(username="carol", password="pw")
    services.membership_set(tenant=tenant, user=existing, role=Role.MEMBER)
    again = client.post(reverse("settings-members-invite"), {"user": "carol", "role": Role.ADMIN})
    assert again.status_code == 400
    assert "carol is already a member of this workspace." in again.content.decode()
    assert membership(tenant, existing).role == Role.MEMBER

    bad_role = client.post(reverse("settings-members-invite"), {"user": "x", "role": "god"})
    assert bad_role.status_code == 400


def test_an_admin_cannot_invite_an_owner_but_an_owner_can(client, login, tenant) -> None:
    dave = User.objects.create_user(username="dave", password="pw")
    login(tenant, Role.ADMIN)
    refused = client.post(reverse("settings-members-invite"), {"user": "dave", "role": "owner"})
    assert refused.status_code == 403
    assert "Only owners can make someone an owner." in refused.content.decode()
    assert not Membership.objects.filter(user=dave).exists()

    login(tenant, Role.OWNER)
    accepted = client.post(reverse("settings-members-invite"), {"user": "dave", "role": "owner"})
    assert accepted.status_code == 302
    assert membership(tenant, dave).role == Role.OWNER


# --- Members: roles and removal -------------------------------------------------------------------


@pytest.mark.parametrize("role", READ_ONLY)
def test_read_only_roles_cannot_manage_members(client, login, make_member, tenant, role) -> None:
    other = make_member(tenant, Role.MEMBER)
    newcomer = User.objects.create_user(username="newcomer", password="pw")
    login(tenant, role)
    target = membership(tenant, other)
    assert (
        client.post(
            reverse("settings-members-invite"), {"user": "newcomer", "role": "member"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("settings-members-role", args=[target.pk]), {"role": "admin"}
        ).status_code
        == 403
    )
    assert client.post(reverse("settings-members-remove", args=[target.pk])).status_code == 403
    target.refresh_from_db()
    assert target.role == Role.MEMBER
    assert not Membership.objects.filter(user=newcomer).exists()


def test_an_admin_changes_and_removes_non_owners(client, login, make_member, tenant) -> None:
    member = membership(tenant, make_member(tenant, Role.MEMBER))
    editor = membership(tenant, make_member(tenant, Role.EDITOR))
    login(tenant, Role.ADMIN)
    response = client.post(reverse("settings-members-role", args=[member.pk]), {"role": "admin"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN
    assert client.post(reverse("settings-members-remove", args=[editor.pk])).status_code == 302
    assert not Membership.objects.filter(pk=editor.pk).exists()


def test_an_admin_cannot_touch_owners_or_make_one(client, login, make_member, tenant) -> None:
    owner = membership(tenant, make_member(tenant, Role.OWNER))
    make_member(tenant, Role.OWNER)  # a second owner: the last-owner rule is not what refuses
    member = membership(tenant, make_member(tenant, Role.MEMBER))
    login(tenant, Role.ADMIN)

    demote = client.post(reverse("settings-members-role", args=[owner.pk]), {"role": "member"})
    assert demote.status_code == 403
    assert "Only owners can change an owner&#x27;s role." in demote.content.decode()
    remove = client.post(reverse("settings-members-remove", args=[owner.pk]))
    assert remove.status_code == 403
    assert "Only owners can remove an owner." in remove.content.decode()
    promote = client.post(reverse("settings-members-role", args=[member.pk]), {"role": "owner"})
    assert promote.status_code == 403

    owner.refresh_from_db()
    member.refresh_from_db()
    assert owner.role == Role.OWNER
    assert member.role == Role.MEMBER


def test_owners_make_and_unmake_owners(client, login, make_member, tenant) -> None:
    admin = membership(tenant, make_member(tenant, Role.ADMIN))
    login(tenant, Role.OWNER)
    assert (
        client.post(
            reverse("settings-members-role", args=[admin.pk]), {"role": "owner"}
        ).status_code
        == 302
    )
    admin.refresh_from_db()
    assert admin.role == Role.OWNER
    assert (
        client.post(
            reverse("settings-members-role", args=[admin.pk]), {"role": "editor"}
        ).status_code
        == 302
    )
    admin.refresh_from_db()
    assert admin.role == Role.EDITOR


def test_the_last_owner_can_be_neither_demoted_nor_removed(client, login, tenant) -> None:
    me = membership(tenant, login(tenant, Role.OWNER))
    demote = client.post(reverse("settings-members-role", args=[me.pk]), {"role": "admin"})
    assert demote.status_code == 400
    assert "A workspace must keep at least one owner." in demote.content.decode()
    leave = client.post(reverse("settings-members-remove", args=[me.pk]))
    assert leave.status_code == 400
    assert "A workspace must keep at least one owner." in leave.content.decode()
    me.refresh_from_db()
    assert me.role == Role.OWNER
    assert "The only owner" in client.get(reverse("settings-members")).content.decode()


def test_an_owner_may_leave_when_another_owner_stays(client, login, make_member, tenant) -> None:
    make_member(tenant, Role.OWNER)
    user = login(tenant, Role.OWNER)
    me = membership(tenant, user)
    response = client.post(reverse("settings-members-remove", args=[me.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("settings-providers")
    assert not Membership.objects.filter(pk=me.pk).exists()
    assert Membership.objects.filter(tenant=tenant, role=Role.OWNER).count() == 1


def test_another_workspaces_member_is_not_found(
    client, login, make_member, tenant, other_tenant
) -> None:
    stranger = make_member(other_tenant, Role.MEMBER, username="stranger")
    theirs = membership(other_tenant, stranger)
    login(tenant, Role.OWNER)
    role = client.post(reverse("settings-members-role", args=[theirs.pk]), {"role": "admin"})
    remove = client.post(reverse("settings-members-remove", args=[theirs.pk]))
    assert role.status_code == remove.status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.MEMBER
    assert "stranger" not in client.get(reverse("settings-members")).content.decode()


def test_an_api_key_principal_cannot_manage_members(tenant, make_member) -> None:
    """The rules live in the services, whoever calls them."""
    from config import errors
    from tenants.principals import Principal

    key, _ = services.api_key_create(tenant=tenant, name="k", scopes=["read", "write", "invoke"])
    target = membership(tenant, make_member(tenant, Role.MEMBER))
    with pytest.raises(errors.PermissionDenied):
        services.member_remove(
            tenant=tenant, membership_id=target.pk, actor=Principal.for_api_key(key)
        )

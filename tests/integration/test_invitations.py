"""Invitations by e-mail (issue 13 item 7): an owner or admin invites an address with a role, the
e-mail carries a link that works once until it expires, and the person creates an account (or
logs in) and joins with that role. Mail goes to Django's in-memory outbox."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config import errors
from providers.models import AuditLogEntry
from tenants import invitations, services
from tenants.authentication import SESSION_TENANT_KEY
from tenants.models import Invitation, Membership, Role
from tenants.principals import Principal

pytestmark = [pytest.mark.django_db]

User = get_user_model()
LINK_RE = re.compile(r"http://testserver(/invite/([A-Za-z0-9_-]+)/)")
PASSWORD = "a-long-enough-passphrase"


@pytest.fixture
def client_factory():
    """Each call: another browser (its own cookies)."""
    return Client


@pytest.fixture
def owner(tenant, make_member):
    return make_member(tenant, Role.OWNER, username="olga")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def invite(client, email="new@example.com", role=Role.EDITOR):
    return client.post(reverse("settings-members-invite"), {"user": email, "role": role})


def link_in(message) -> tuple[str, str]:
    """The invitation's path and token from an e-mail."""
    found = LINK_RE.findall(message.body)
    assert len(found) == 1, message.body
    return found[0]


def sign_up(client, path, username="newbie", password=PASSWORD, again=None):
    assert client.get(path).status_code == 302
    return client.post(
        reverse("invitation"),
        {"username": username, "password1": password, "password2": again or password},
    )


def actor_for(tenant, user) -> Principal:
    return Principal.for_member(Membership.objects.get(tenant=tenant, user=user))


def link_for(token: str) -> str:
    return f"http://testserver/invite/{token}/"


# --- Inviting -------------------------------------------------------------------------------------


def test_the_email_carries_a_link_whose_token_is_stored_only_hashed(
    owner_client, tenant, mailoutbox
) -> None:
    response = invite(owner_client)
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new@example.com"]
    assert "Acme" in message.subject
    assert "olga invites you to join the workspace “Acme” as Editor." in message.body
    _, token = link_in(message)
    assert len(token) >= 40
    invitation = Invitation.objects.get(tenant=tenant)
    assert invitation.token_hash == invitations.token_hash(token) != token
    assert invitation.role == Role.EDITOR
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)
    page = owner_client.get(reverse("settings-members")).content.decode()
    assert "new@example.com" in page
    assert token not in page
    assert f'data-invitation="{invitation.pk}" data-status="pending"' in page


def test_the_expiry_is_configurable(owner_client, tenant, mailoutbox, settings) -> None:
    settings.INVITATION_MAX_AGE_DAYS = 2
    invite(owner_client)
    invitation = Invitation.objects.get(tenant=tenant)
    assert invitation.expires_at - invitation.sent_at == timedelta(days=2)


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-address@", "Enter a valid e-mail address."),
        ("olga@example.com", "A member of this workspace already uses this e-mail address."),
    ],
)
def test_bad_addresses_are_field_errors(owner_client, owner, email, message, mailoutbox) -> None:
    owner.email = "Olga@Example.com"
    owner.save()
    response = invite(owner_client, email=email)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert mailoutbox == []
    assert not Invitation.objects.exists()


def test_an_admin_cannot_invite_an_owner(client, tenant, make_member, mailoutbox) -> None:
    client.force_login(make_member(tenant, Role.ADMIN))
    response = invite(client, role=Role.OWNER)
    assert response.status_code == 403
    assert "Only owners can invite an owner." in response.content.decode()
    assert mailoutbox == []


@pytest.mark.parametrize("role", [Role.EDITOR, Role.MEMBER])
def test_read_only_members_see_invitations_without_forms(
    client, tenant, owner, make_member, role, mailoutbox
) -> None:
    invitation = invitations.invitation_create(
        tenant=tenant,
        email="new@example.com",
        role=Role.MEMBER,
        actor=actor_for(tenant, owner),
        link_for=link_for,
    )
    client.force_login(make_member(tenant, role))
    page = client.get(reverse("settings-members")).content.decode()
    assert "new@example.com" in page
    assert "<form" not in page.split('id="main"')[1]  # not one form in the page's content
    resend = client.post(reverse("settings-invitation-resend", args=[invitation.pk]))
    revoke = client.post(reverse("settings-invitation-revoke", args=[invitation.pk]))
    assert resend.status_code == revoke.status_code == 403
    assert len(mailoutbox) == 1
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_sending_is_throttled_per_workspace(
    owner_client, tenant, other_tenant, make_member, mailoutbox, settings
) -> None:
    settings.INVITATIONS_PER_HOUR = 2
    assert invite(owner_client, email="a@example.com").status_code == 302
    invitation = Invitation.objects.get(email="a@example.com")
    resent = owner_client.post(reverse("settings-invitation-resend", args=[invitation.pk]))
    assert resent.status_code == 302  # a resend counts too
    refused = invite(owner_client, email="b@example.com")
    assert refused.status_code == 429
    assert "This workspace has sent 2 invitations within an hour" in refused.content.decode()
    assert len(mailoutbox) == 2
    assert not Invitation.objects.filter(email="b@example.com").exists()
    # Another workspace has its own count.
    other_owner = make_member(other_tenant, Role.OWNER)
    invitations.invitation_create(
        tenant=other_tenant,
        email="b@example.com",
        role=Role.MEMBER,
        actor=actor_for(other_tenant, other_owner),
        link_for=link_for,
    )
    assert len(mailoutbox) == 3


def test_a_mail_server_that_cannot_be_reached_saves_nothing(
    owner_client, tenant, settings, caplog
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    response = invite(owner_client)
    assert response.status_code == 503
    assert "The invitation e-mail could not be sent." in response.content.decode()
    assert not Invitation.objects.exists()
    assert not AuditLogEntry.objects.filter(action__startswith="invitation").exists()


# --- Accepting ------------------------------------------------------------------------------------


def test_a_new_person_sets_a_password_and_joins_with_the_role(
    owner_client, client_factory, tenant, other_tenant, mailoutbox
) -> None:
    invite(owner_client, role=Role.ADMIN)
    path, token = link_in(mailoutbox[0])
    newcomer = client_factory()
    opened = newcomer.get(path)
    assert opened.status_code == 302
    assert opened["Location"] == reverse("invitation")  # the token leaves the address bar
    page = newcomer.get(reverse("invitation"))
    assert page.status_code == 200
    assert "Join Acme" in page.content.decode()
    assert token not in page.content.decode()

    joined = newcomer.post(
        reverse("invitation"),
        {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert joined.status_code == 302
    assert joined["Location"] == reverse("settings-providers")
    user = User.objects.get(username="newbie")
    assert user.email == "new@example.com"
    assert user.check_password(PASSWORD)
    assert Membership.objects.get(user=user).tenant == tenant  # this workspace only
    assert Membership.objects.get(user=user).role == Role.ADMIN
    assert newcomer.session[SESSION_TENANT_KEY] == tenant.pk
    welcome = newcomer.get(reverse("settings-providers")).content.decode()
    assert "Welcome to Acme. You are a member, as Admin." in welcome
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None
    # Accepted invitations leave the members page's list; the new member is in the table.
    members = owner_client.get(reverse("settings-members")).content.decode()
    assert "data-invitation=" not in members
    assert "newbie" in members


def test_a_used_link_is_refused(owner_client, client_factory, mailoutbox) -> None:
    invite(owner_client)
    path, _ = link_in(mailoutbox[0])
    assert sign_up(client_factory(), path).status_code == 302
    again = client_factory()
    assert again.get(path).status_code == 302
    page = again.get(reverse("invitation"))
    assert page.status_code == 410
    assert "This invitation has already been used." in page.content.decode()
    refused = sign_up(again, path, username="second")
    assert refused.status_code == 410
    assert not User.objects.filter(username="second").exists()


def test_an_expired_link_is_refused(owner_client, client_factory, mailoutbox, monkeypatch) -> None:
    invite(owner_client)
    path, _ = link_in(mailoutbox[0])
    newcomer = client_factory()
    newcomer.get(path)
    assert newcomer.get(reverse("invitation")).status_code == 200  # on day 0 it works
    later = timezone.now() + timedelta(days=7, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    page = newcomer.get(reverse("invitation"))
    assert page.status_code == 410
    assert "This invitation has expired." in page.content.decode()
    refused = newcomer.post(
        reverse("invitation"),
        {"username": "late", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert refused.status_code == 410
    assert not User.objects.filter(username="late").exists()
    members = owner_client.get(reverse("settings-members")).content.decode()
    assert 'data-status="expired"' in members  # listed as expired, and may be resent


def test_the_service_refuses_an_expired_invitation_even_if_the_page_did_not(
    owner_client, tenant, mailoutbox, monkeypatch
) -> None:
    invite(owner_client)
    _, token = link_in(mailoutbox[0])
    invitation = Invitation.objects.get()
    later = timezone.now() + timedelta(days=8)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with pytest.raises(errors.Conflict) as refused:
        invitations.invitation_sign_up(
            invitation_id=invitation.pk,
            hashed=invitations.token_hash(token),
            username="late",
            password=PASSWORD,
        )
    assert refused.value.code == "expired"
    assert not User.objects.filter(username="late").exists()


def test_a_revoked_link_is_refused(owner_client, client_factory, mailoutbox) -> None:
    invite(owner_client)
    path, _ = link_in(mailoutbox[0])
    invitation = Invitation.objects.get()
    revoked = owner_client.post(
        reverse("settings-invitation-revoke", args=[invitation.pk]), follow=True
    )
    assert "The invitation to new@example.com is revoked" in revoked.content.decode()
    newcomer = client_factory()
    newcomer.get(path)
    page = newcomer.get(reverse("invitation"))
    assert page.status_code == 410
    assert "This invitation was withdrawn by the workspace." in page.content.decode()
    # Revoking twice, or resending a revoked invitation: not found, nothing sent.
    assert (
        owner_client.post(reverse("settings-invitation-revoke", args=[invitation.pk])).status_code
        == 404
    )
    assert (
        owner_client.post(reverse("settings-invitation-resend", args=[invitation.pk])).status_code
        == 404
    )
    assert len(mailoutbox) == 1


def test_a_resend_replaces_the_link(owner_client, client_factory, mailoutbox) -> None:
    invite(owner_client)
    old_path, _ = link_in(mailoutbox[0])
    invitation = Invitation.objects.get()
    owner_client.post(reverse("settings-invitation-resend", args=[invitation.pk]))
    new_path, _ = link_in(mailoutbox[1])
    assert new_path != old_path
    stale = client_factory()
    stale.get(old_path)
    page = stale.get(reverse("invitation"))
    assert page.status_code == 404
    assert "This invitation link is not valid." in page.content.decode()
    assert sign_up(client_factory(), new_path).status_code == 302


def test_inviting_an_address_again_replaces_the_open_invitation(
    owner_client, client_factory, mailoutbox
) -> None:
    invite(owner_client, role=Role.MEMBER)
    first_path, _ = link_in(mailoutbox[0])
    invite(owner_client, email="NEW@example.com", role=Role.ADMIN)
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1
    stale = client_factory()
    stale.get(first_path)
    assert stale.get(reverse("invitation")).status_code == 410


def test_unknown_and_missing_links_say_so(client) -> None:
    assert client.get(reverse("invitation")).status_code == 404
    assert (
        "Open the link in your invitation e-mail"
        in client.get(reverse("invitation")).content.decode()
    )
    assert client.get("/invite/not-a-token/").status_code == 302
    page = client.get(reverse("invitation"))
    assert page.status_code == 404
    assert "This invitation link is not valid." in page.content.decode()
    assert client.post(reverse("invitation"), {"username": "x"}).status_code == 404


def test_sign_up_errors_are_shown_and_nothing_is_created(
    owner_client, client_factory, owner, mailoutbox
) -> None:
    invite(owner_client)
    path, _ = link_in(mailoutbox[0])
    newcomer = client_factory()
    mismatch = sign_up(newcomer, path, again="something-else-entirely")
    assert mismatch.status_code == 400
    assert "The two password fields didn" in mismatch.content.decode()
    taken = sign_up(newcomer, path, username="olga")
    assert taken.status_code == 400
    assert "A user with that username already exists." in taken.content.decode()
    weak = sign_up(newcomer, path, password="123")
    assert weak.status_code == 400
    assert "This password is too short." in weak.content.decode()
    assert User.objects.count() == 1
    assert Invitation.objects.get().accepted_at is None


def test_someone_with_an_account_joins_after_logging_in(
    owner_client, client_factory, tenant, other_tenant, make_member, mailoutbox
) -> None:
    bea = make_member(other_tenant, Role.OWNER, username="bea")
    bea.set_password(PASSWORD)
    bea.save()
    invite(owner_client, email="bea@example.com", role=Role.MEMBER)
    path, _ = link_in(mailoutbox[0])
    browser = client_factory()
    browser.get(path)
    page = browser.get(reverse("invitation")).content.decode()
    assert "/accounts/login/?next=/invite/" in page
    logged_in = browser.post(
        reverse("login") + "?next=/invite/",
        {"username": "bea", "password": PASSWORD, "next": "/invite/"},
    )
    assert logged_in["Location"] == "/invite/"
    page = browser.get("/invite/").content.decode()
    assert "You are logged in as bea." in page
    joined = browser.post(reverse("invitation"))
    assert joined.status_code == 302
    assert Membership.objects.get(tenant=tenant, user=bea).role == Role.MEMBER
    assert Membership.objects.get(tenant=other_tenant, user=bea).role == Role.OWNER
    assert browser.session[SESSION_TENANT_KEY] == tenant.pk


def test_a_member_who_accepts_keeps_their_role(owner_client, tenant, owner, mailoutbox) -> None:
    """An owner opening an invitation as member does not demote (the last owner is kept)."""
    invitation = invitations.invitation_create(
        tenant=tenant,
        email="own-address@example.com",
        role=Role.MEMBER,
        actor=actor_for(tenant, owner),
        link_for=link_for,
    )
    _, token = link_in(mailoutbox[0])
    membership = invitations.invitation_accept(
        invitation_id=invitation.pk, hashed=invitations.token_hash(token), user=owner
    )
    assert membership.role == Role.OWNER


def test_another_workspaces_invitation_is_not_found(
    client, tenant, other_tenant, make_member, mailoutbox
) -> None:
    theirs_owner = make_member(other_tenant, Role.OWNER)
    theirs = invitations.invitation_create(
        tenant=other_tenant,
        email="x@example.com",
        role=Role.MEMBER,
        actor=actor_for(other_tenant, theirs_owner),
        link_for=link_for,
    )
    client.force_login(make_member(tenant, Role.OWNER))
    assert client.post(reverse("settings-invitation-revoke", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("settings-invitation-resend", args=[theirs.pk])).status_code == 404
    assert "x@example.com" not in client.get(reverse("settings-members")).content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert len(mailoutbox) == 1


def test_an_admin_cannot_resend_or_revoke_an_owner_invitation(
    client, tenant, owner, make_member, mailoutbox
) -> None:
    invitation = invitations.invitation_create(
        tenant=tenant,
        email="boss@example.com",
        role=Role.OWNER,
        actor=actor_for(tenant, owner),
        link_for=link_for,
    )
    client.force_login(make_member(tenant, Role.ADMIN))
    page = client.get(reverse("settings-members")).content.decode()
    assert "boss@example.com" in page
    assert "Revoke the invitation to boss@example.com" not in page
    assert (
        client.post(reverse("settings-invitation-revoke", args=[invitation.pk])).status_code == 403
    )
    assert (
        client.post(reverse("settings-invitation-resend", args=[invitation.pk])).status_code == 403
    )
    assert len(mailoutbox) == 1


# --- The token stays out of logs; the audit log has every change --------------------------------


def test_the_token_is_in_no_log_line(owner_client, client_factory, mailoutbox, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    invite(owner_client)
    path, token = link_in(mailoutbox[0])
    newcomer = client_factory()
    sign_up(newcomer, path, again="mismatch-mismatch")  # a 400, logged by Django
    sign_up(newcomer, path)
    newcomer.get(path)  # used: the 410 is logged with its path
    newcomer.get(reverse("invitation"))
    client_factory().get("/invite/not-a-token/")
    assert any(r.name == "django.request" for r in caplog.records)
    assert token not in caplog.text
    assert invitations.token_hash(token) not in caplog.text


def test_every_member_change_is_audited(
    owner_client, client_factory, tenant, owner, make_member, mailoutbox
) -> None:
    bob = User.objects.create_user(username="bob", password="pw")
    owner_client.post(reverse("settings-members-invite"), {"user": "bob", "role": Role.EDITOR})
    bob_membership = Membership.objects.get(tenant=tenant, user=bob)
    owner_client.post(reverse("settings-members-role", args=[bob_membership.pk]), {"role": "admin"})
    owner_client.post(reverse("settings-members-remove", args=[bob_membership.pk]))
    invite(owner_client, email="gone@example.com")
    gone = Invitation.objects.get(email="gone@example.com")
    owner_client.post(reverse("settings-invitation-resend", args=[gone.pk]))
    owner_client.post(reverse("settings-invitation-revoke", args=[gone.pk]))
    invite(owner_client, email="new@example.com", role=Role.MEMBER)
    sign_up(client_factory(), link_in(mailoutbox[-1])[0])

    entries = list(AuditLogEntry.objects.filter(tenant=tenant).order_by("id"))
    assert [(e.action, e.target, e.changes) for e in entries] == [
        ("member.add", "bob", {"role": "editor"}),
        ("member.role", "bob", {"role": ["editor", "admin"]}),
        ("member.remove", "bob", {"role": "admin"}),
        ("invitation.create", "gone@example.com", {"role": "editor"}),
        ("invitation.resend", "gone@example.com", {"role": "editor"}),
        ("invitation.revoke", "gone@example.com", {"role": "editor"}),
        ("invitation.create", "new@example.com", {"role": "member"}),
        ("invitation.accept", "new@example.com", {"username": "newbie", "role": "member"}),
    ]
    assert {e.actor.username for e in entries[:-1]} == {"olga"}
    assert entries[-1].actor.username == "newbie"


def test_the_last_owner_is_kept_and_refusals_are_not_audited(tenant, owner, make_member) -> None:
    me = Membership.objects.get(tenant=tenant, user=owner)
    actor = Principal.for_member(me)
    with pytest.raises(errors.InvalidInput, match="at least one owner"):
        services.member_role_set(tenant=tenant, membership_id=me.pk, role=Role.ADMIN, actor=actor)
    with pytest.raises(errors.InvalidInput, match="at least one owner"):
        services.member_remove(tenant=tenant, membership_id=me.pk, actor=actor)
    me.refresh_from_db()
    assert me.role == Role.OWNER
    assert not AuditLogEntry.objects.filter(tenant=tenant).exists()
    # With a second owner, the first may step down.
    make_member(tenant, Role.OWNER)
    services.member_role_set(tenant=tenant, membership_id=me.pk, role=Role.ADMIN, actor=actor)
    me.refresh_from_db()
    assert me.role == Role.ADMIN
    assert AuditLogEntry.objects.filter(tenant=tenant, action="member.role").count() == 1

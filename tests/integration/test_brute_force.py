"""Brute-force limits: failed logins (site and admin) per account and per client address, and
failed API keys per address (/api/v1 and the /v1 gateway)."""

from __future__ import annotations

import secrets
import time

import httpx
import openai
import pytest
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from django.test import Client

from config import shared_state
from invocations import gateway
from tenants import services as tenant_services

User = get_user_model()
PASSWORD = "correct horse battery staple"


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW = 2
    settings.API_KEY_FAILURES_PER_ADDRESS = 3
    settings.API_KEY_FAILURE_WINDOW = 60
    return settings


@pytest.fixture
def alice(db):
    return User.objects.create_user(username="alice", password=PASSWORD, is_staff=True)


def _login(client: Client, username: str, password: str, url: str = "/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def test_the_right_password_is_refused_while_the_account_is_locked_and_accepted_after(
    limits, alice
) -> None:
    client = Client()
    for _ in range(3):
        assert _login(client, "alice", "wrong").status_code == 200
    locked = _login(client, "alice", PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= 2
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    time.sleep(2.2)  # the window passes
    assert _login(client, "alice", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_a_success_clears_the_accounts_count(limits, alice) -> None:
    for _ in range(2):
        for _ in range(2):
            _login(Client(), "alice", "wrong")
        assert _login(Client(), "alice", PASSWORD).status_code == 302


def test_an_address_is_locked_out_across_accounts_and_others_are_not(limits, alice) -> None:
    client = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(5):
        assert _login(client, f"nobody{i}", "wrong").status_code == 200
    assert _login(client, "alice", PASSWORD).status_code == 429
    assert _login(Client(REMOTE_ADDR="203.0.113.8"), "alice", PASSWORD).status_code == 302


def test_the_admin_login_is_locked_out_too(limits, alice) -> None:
    client = Client()
    for _ in range(3):
        assert _login(client, "alice", "wrong", "/admin/login/").status_code == 200
    locked = _login(client, "alice", PASSWORD, "/admin/login/")
    assert locked.status_code == 429
    assert locked["Retry-After"]
    assert "Too many failed logins" in locked.content.decode()
    # The lock is the account's, whichever page the failures came through.
    assert _login(Client(), "alice", PASSWORD).status_code == 429


def test_no_password_reaches_redis(limits, alice) -> None:
    for _ in range(4):
        _login(Client(), "alice", "hunter2-the-guess")
    stored = [
        (key, shared_state.client().get(key)) for key in shared_state.client().scan_iter("mps:*")
    ]
    assert stored
    assert not any(b"hunter2" in key or b"hunter2" in (value or b"") for key, value in stored)
    assert not any(b"alice" in key for key, _ in stored)


def test_behind_trusted_proxies_the_address_is_what_the_outermost_saw(settings) -> None:
    from tenants import throttling

    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.4"}
    settings.TRUSTED_PROXY_COUNT = 0
    assert throttling.client_address(meta) == "10.0.0.2"  # a client's own header is not trusted
    settings.TRUSTED_PROXY_COUNT = 1
    assert throttling.client_address(meta) == "198.51.100.4"


def test_failed_api_keys_lock_out_the_address_not_others(limits, tenant, key_client) -> None:
    good = key_client()
    good.defaults["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(3):
        guess = key_client()
        guess.credentials(HTTP_AUTHORIZATION=f"Bearer mps_{secrets.token_urlsafe(30)}")
        guess.defaults["REMOTE_ADDR"] = "203.0.113.7"
        assert guess.get("/api/v1/api-keys").status_code == 401
    refused = good.get("/api/v1/api-keys")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_failures"
    assert 1 <= int(refused["Retry-After"]) <= 60
    good.defaults["REMOTE_ADDR"] = "203.0.113.8"
    assert good.get("/api/v1/api-keys").status_code == 200


def _gateway_client(raw_key: str, address: str) -> openai.OpenAI:
    transport = httpx.WSGITransport(app=gateway.mount(get_wsgi_application()), remote_addr=address)
    return openai.OpenAI(
        base_url="http://localhost/v1",
        api_key=raw_key,
        max_retries=0,
        http_client=httpx.Client(transport=transport),
    )


def test_the_gateway_refuses_a_locked_out_address_in_openais_shape(limits, tenant, settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    raw = tenant_services.api_key_create(tenant=tenant, name="gw", scopes=["invoke", "read"])[1]
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError):
            _gateway_client(f"mps_{secrets.token_urlsafe(30)}", "203.0.113.7").models.list()
    with pytest.raises(openai.RateLimitError) as refused:
        _gateway_client(raw, "203.0.113.7").models.list()
    assert refused.value.body == {
        "message": refused.value.body["message"],
        "type": "rate_limit_error",
        "param": None,
        "code": "too_many_failures",
    }
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 60
    assert _gateway_client(raw, "203.0.113.8").models.list().data is not None

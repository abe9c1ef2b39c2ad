from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from django.utils import translation
from rest_framework.test import APIClient

from tenants import services
from tenants.models import ApiKeyScope, Role, Tenant

User = get_user_model()


@pytest.fixture
def tenant(db: None) -> Tenant:
    return services.tenant_create(name="Acme")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return services.tenant_create(name="Globex")


@pytest.fixture
def make_member(db: None) -> Callable[..., User]:
    """`make_member(tenant, role)`: a new user with that role in that workspace."""
    counter = iter(range(1, 10_000))

    def make(tenant: Tenant, role: str = Role.MEMBER, username: str = "") -> User:
        user = User.objects.create_user(username=username or f"user{next(counter)}", password="pw")
        services.membership_set(tenant=tenant, user=user, role=role)
        return user

    return make


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def key_client(tenant: Tenant) -> Callable[..., APIClient]:
    """`key_client(tenant=..., scopes=[...])`: an API client authenticated with a new key."""

    def make(for_tenant: Tenant | None = None, scopes: list[str] | None = None) -> APIClient:
        _, raw_key = services.api_key_create(
            tenant=for_tenant or tenant,
            name="test",
            scopes=scopes if scopes is not None else list(ApiKeyScope.values),
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return make


@pytest.fixture
def session_client(make_member: Callable[..., User]) -> Callable[..., APIClient]:
    """`session_client(tenant, role)`: a logged-in member's browser session. CSRF is enforced, and
    the client sends the token as a page's script would (`csrf=False` to leave it out)."""

    def make(tenant: Tenant, role: str = Role.MEMBER, *, csrf: bool = True) -> APIClient:
        user = make_member(tenant, role)
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        client.user = user
        if csrf:
            token = _get_new_csrf_string()
            client.cookies[settings.CSRF_COOKIE_NAME] = token
            client.credentials(HTTP_X_CSRFTOKEN=token)
        return client

    return make


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: a page request in 简体中文 leaves it active on
    the thread (LocaleMiddleware activates, nothing deactivates), which would leak into the next."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture(autouse=True)
def _fresh_routing_state(request: pytest.FixtureRequest) -> None:
    """Each test starts with no cached route and no shared routing state (versions, round-robin
    positions, cool-downs): workspace ids repeat between tests, as rolled-back rows free them."""
    from providers import balancing, routing

    routing.forget_routes()
    if request.node.get_closest_marker("redis") is None:
        return
    stale = list(balancing.client().scan_iter("mps:*"))
    if stale:
        balancing.client().delete(*stale)


@pytest.fixture
def celery_worker_thread(transactional_db: None) -> Iterator[None]:
    """A real Celery worker (in-process thread, consuming from the real Redis broker), started on
    an empty queue."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


# Fixtures that start worker or web processes (tests/jobs.py).
PROCESS_FIXTURES = {"worker", "web"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks by what a test needs, so lanes can pick (`-m "not browser"`): everything outside
    tests/unit needs Redis (and a database); tests/e2e drive Chromium; a test with a real Celery
    worker thread is a `worker` test, one with worker or web processes a `processes` test (those
    that start them inside the test are marked where they are written)."""
    for item in items:
        path = item.path.as_posix()
        if "/tests/unit/" not in path:
            item.add_marker(pytest.mark.redis)
        if "/tests/e2e/" in path:
            item.add_marker(pytest.mark.browser)
        fixtures = set(getattr(item, "fixturenames", ()))
        if "celery_worker_thread" in fixtures:
            item.add_marker(pytest.mark.worker)
        if fixtures & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.processes)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail at once, and say why, when the Redis the chosen tests need is not there (the unit
    tests need none)."""
    if not any(item.get_closest_marker("redis") for item in session.items):
        return
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"Redis at {settings.REDIS_URL} is unreachable ({exc}). Run scripts/test, which "
            "starts a bundled Redis, or set REDIS_URL.",
            returncode=3,
        )

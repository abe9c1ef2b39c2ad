"""Brute-force limits on logins and API keys, counted in Redis (shared by every web process):

    mps:fail:login:account:{sha256 of the username}   failed logins of an account
    mps:fail:login:address:{address}                  failed logins from a client address
    mps:fail:api-key:{address}                        failed API keys from a client address

A counter starts at its first failure and expires a window later (LOGIN_FAILURE_WINDOW,
API_KEY_FAILURE_WINDOW); once it reaches its limit, attempts are refused (429, `RateLimited`
with the seconds left) until it expires, the right password or key included. A successful login
clears its account's counter. Neither a password nor a key is ever stored. If Redis cannot be
reached nothing is refused, as for rate limits: a limit must not take the service down with it.

The client address is REMOTE_ADDR, or, behind TRUSTED_PROXY_COUNT proxies that each append to
X-Forwarded-For, the address the outermost of them saw (what a client sends there itself is
further left, and never trusted).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import redis
from django.conf import settings
from django.utils.translation import gettext as _

from config import errors, shared_state

logger = logging.getLogger(__name__)
LOCKED_CODE = "too_many_failures"


def client_address(meta: Mapping[str, Any]) -> str:
    """The client's address, from a WSGI environ or `request.META`."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:64]
    return str(meta.get("REMOTE_ADDR", ""))[:64] or "unknown"


def _account_key(username: str) -> str:
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    return f"mps:fail:login:account:{digest}"


def _login_address_key(address: str) -> str:
    return f"mps:fail:login:address:{address}"


def api_key_failures_key(address: str) -> str:
    return f"mps:fail:api-key:{address}"


def _count_failure(keys: list[str], window: int) -> None:
    """One more failure on each counter; a new counter expires a window from now. One round
    trip (SET NX EX then INCR, as EXPIRE NX needs Redis 7 and the bundled Redis is 6.2)."""
    pipe = shared_state.client().pipeline()
    for key in keys:
        pipe.set(key, 0, ex=window, nx=True).incr(key)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Failed attempt not counted (Redis: %s)", exc)


def _seconds_left(key: str, window: int) -> int:
    try:
        left = shared_state.client().ttl(key)
    except redis.RedisError:
        left = window
    return max(1, left if left > 0 else window)


# --- Logins -----------------------------------------------------------------------------------


def login_check(*, username: str, address: str) -> None:
    """Raise RateLimited while the account or the address is locked out (before any password
    is checked)."""
    keys = [_account_key(username), _login_address_key(address)]
    limits = [settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_ADDRESS]
    try:
        counts = shared_state.client().mget(keys)
    except redis.RedisError as exc:
        logger.warning("Login limits not checked (Redis: %s)", exc)
        return
    for key, count, limit in zip(keys, counts, limits, strict=True):
        if count is not None and int(count) >= limit:
            left = _seconds_left(key, settings.LOGIN_FAILURE_WINDOW)
            raise errors.RateLimited(
                f"Too many failed logins; try again in {_minutes(left)}.",
                retry_after=left,
                code=LOCKED_CODE,
            )


def login_failed(*, username: str, address: str) -> None:
    _count_failure(
        [_account_key(username), _login_address_key(address)], settings.LOGIN_FAILURE_WINDOW
    )


def login_succeeded(*, username: str) -> None:
    try:
        shared_state.client().delete(_account_key(username))
    except redis.RedisError as exc:
        logger.warning("Failed logins not cleared (Redis: %s)", exc)


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


# --- API keys ---------------------------------------------------------------------------------


def api_key_check(address: str) -> None:
    """Raise RateLimited while the address is locked out, before any key is looked up. Read
    inside a `shared_state.read_together` that holds `api_key_failures_key(address)`, this costs
    no round trip of its own."""
    count = shared_state.read(api_key_failures_key(address))
    if count is not None and int(count) >= settings.API_KEY_FAILURES_PER_ADDRESS:
        left = _seconds_left(api_key_failures_key(address), settings.API_KEY_FAILURE_WINDOW)
        raise errors.RateLimited(
            f"Too many failed API keys from this address; try again in {left} s.",
            retry_after=left,
            code=LOCKED_CODE,
        )


def api_key_failed(address: str) -> None:
    _count_failure([api_key_failures_key(address)], settings.API_KEY_FAILURE_WINDOW)


# --- Invitations ----------------------------------------------------------------------------------


def invitations_key(tenant_id: int) -> str:
    return f"mps:invitations:{tenant_id}"


def invitation_sent(tenant_id: int) -> None:
    """Count one invitation e-mail of the workspace, or raise RateLimited (counting nothing) when
    it has sent INVITATIONS_PER_HOUR in the hour since its first. Redis down: not limited."""
    key, window = invitations_key(tenant_id), 3600
    limit = settings.INVITATIONS_PER_HOUR
    try:
        count = shared_state.client().get(key)
        if count is not None and int(count) >= limit:
            left = _seconds_left(key, window)
            raise errors.RateLimited(
                _(
                    "This workspace has sent %(count)s invitations within an hour, the most it "
                    "may; try again in %(minutes)s min."
                )
                % {"count": limit, "minutes": -(-left // 60)},
                retry_after=left,
            )
        shared_state.client().pipeline().set(key, 0, ex=window, nx=True).incr(key).execute()
    except redis.RedisError as exc:
        logger.warning("Invitations not counted (Redis: %s)", exc)

"""Celery tasks: run an invocation, and sweep jobs a lost worker left behind."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from invocations import services, sweep


@shared_task(
    name="invocations.run",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def run(
    invocation_id: int,
    hold_minute: int | None = None,
    hold_tokens: int = 0,
    tenant_id: int | None = None,
) -> None:
    """`hold_*`: the tokens the call's admission holds in its key's minute (see limits.admit).
    While the workspace has its share of the workers busy, the task is sent again a moment later."""
    services.invocation_run(
        invocation_id=invocation_id,
        tenant_id=tenant_id,
        hold_minute=hold_minute,
        hold_tokens=hold_tokens,
        defer=lambda: run.apply_async(
            (invocation_id, hold_minute, hold_tokens, tenant_id),
            countdown=settings.JOB_DEFER_SECONDS,
        ),
    )


@shared_task(name="invocations.sweep_stuck_jobs")
def sweep_stuck_jobs() -> dict[str, int]:
    return sweep.sweep_stuck_jobs()

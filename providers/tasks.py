"""Celery tasks of the providers app: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from providers import validation


@shared_task(
    name="providers.validate",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def validate(job_id: int) -> None:
    validation.validation_run(
        job_id=job_id,
        defer=lambda: validate.apply_async((job_id,), countdown=settings.JOB_DEFER_SECONDS),
    )


@shared_task(name="providers.sweep_stuck_validations")
def sweep_stuck_validations() -> dict[str, int]:
    return validation.sweep_stuck_validations()

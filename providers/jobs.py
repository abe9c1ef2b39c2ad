"""What validation and invocation jobs share: the stuck-job sweep, and how a job ends when
something unexpected breaks inside it. Each app sweeps and finishes its own rows with these.

Redis redelivers an unacknowledged task after its visibility timeout; the sweep is the second net,
driven by the database rows: a job queued past `JOB_QUEUED_TIMEOUT` or running past
`JOB_RUNNING_TIMEOUT` is queued again, up to `JOB_MAX_ATTEMPTS` tries, then failed as `lost`.
Running it twice is harmless: every change is a conditional update on the status it saw.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config import errors
from config.redact import scrub_values
from providers.models import JobStatus

logger = logging.getLogger(__name__)

MAX_MESSAGE = 300
LOST_MESSAGE = "The job was lost by its workers too many times."


def _stuck(model: type[models.Model]) -> list:
    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT)
    running_before = now - timedelta(seconds=settings.JOB_RUNNING_TIMEOUT)
    return list(
        model.objects.filter(
            # started_at is also when a sweep last re-sent a queued job
            Q(status=JobStatus.QUEUED, started_at__isnull=True, created_at__lt=queued_before)
            | Q(status=JobStatus.QUEUED, started_at__lt=queued_before)
            | Q(status=JobStatus.RUNNING, started_at__lt=running_before)
        ).only("pk", "attempts", "status")[:500]
    )


def sweep(
    model: type[models.Model],
    *,
    requeue: Callable[[int], object],
    on_lost: Callable[[int], None] = lambda job_id: None,
) -> dict[str, int]:
    """Queue `model`'s stuck jobs again with `requeue(job_id)`, or fail those out of attempts as
    `lost` and call `on_lost(job_id)` so the app can settle what the job was about."""
    requeued = failed = 0
    for job in _stuck(model):
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            changed = model.objects.filter(pk=job.pk, status=job.status).update(
                status=JobStatus.FAILED,
                error_code="lost",
                error_message=LOST_MESSAGE,
                finished_at=timezone.now(),
            )
            if changed:
                failed += 1
                on_lost(job.pk)
            continue
        # Back to queued, its clock restarted, so that only one sweep re-sends it.
        changed = model.objects.filter(pk=job.pk, status=job.status).update(
            status=JobStatus.QUEUED, started_at=timezone.now()
        )
        if changed:
            requeue(job.pk)
            requeued += 1
    return {"requeued": requeued, "failed": failed}


def unexpected(exc: Exception, *, job: str, secrets: Iterable[str] = ()) -> errors.ServiceError:
    """The typed error a job ends with when `exc` is not one of ours (a bug, a corrupt row, a
    library's ValueError): logged with its traceback, both scrubbed of the call's secrets."""
    # Also as a repr shows them (a library's message may quote a value with its escapes).
    secrets = tuple(secrets) + tuple(repr(s)[1:-1] for s in secrets if repr(s)[1:-1] != s)
    trace = scrub_values("".join(traceback.format_exception(exc)), secrets)
    logger.error("%s failed unexpectedly:\n%s", job, trace)
    detail = scrub_values(" ".join(f"{type(exc).__name__}: {exc}".split()), secrets)
    message = f"Something unexpected failed inside the service ({detail})."
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 2] + "…)"
    return errors.ServiceError(message, code="internal_error")

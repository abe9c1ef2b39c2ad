"""Re-enqueue jobs that a lost worker (killed, restarted, network cut) left queued or running.

Redis redelivers an unacknowledged task after its visibility timeout; this sweep is the second
net, driven by the database rows: a job queued past `JOB_QUEUED_TIMEOUT` or running past
`JOB_RUNNING_TIMEOUT` is queued again, up to `JOB_MAX_ATTEMPTS` tries, then failed as `lost`.
Running it twice is harmless: claiming a job is an atomic status change.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from invocations import tasks
from invocations.models import Invocation
from providers import tasks as provider_tasks
from providers.models import JobStatus, ValidationJob


def _stuck(model: type) -> list:
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


def sweep_stuck_jobs() -> dict[str, int]:
    requeued = failed = 0
    for model, task in ((Invocation, tasks.run), (ValidationJob, provider_tasks.validate)):
        for job in _stuck(model):
            if job.attempts >= settings.JOB_MAX_ATTEMPTS:
                changed = model.objects.filter(pk=job.pk, status=job.status).update(
                    status=JobStatus.FAILED,
                    error_code="lost",
                    error_message="The job was lost by its workers too many times.",
                    finished_at=timezone.now(),
                )
                failed += changed
                continue
            # Back to queued, its clock restarted, so that only one sweep re-sends it.
            changed = model.objects.filter(pk=job.pk, status=job.status).update(
                status=JobStatus.QUEUED, started_at=timezone.now()
            )
            if changed:
                task.delay(job.pk)
                requeued += 1
    return {"requeued": requeued, "failed": failed}

"""Validation jobs: queue a check of stored credentials, run it in a worker, record the verdict.

Tasks take the job id; plaintext credentials exist only inside the worker, while it runs. A job
always ends with a verdict on its target (credential, custom model or load-balancing entry): an
unexpected failure ends it `failed` with a readable message, and a job its workers lost for good
ends it invalid ("check again"), so no card shows "Validating…" forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime

from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from config import errors
from config.db import release_while_waiting
from providers import balancing, jobs, revisions, routing, selectors, services, tasks
from providers.models import (
    CheckedConfig,
    CheckStatus,
    CustomModel,
    JobStatus,
    LoadBalancingEntry,
    ProviderCredential,
    ValidationJob,
)
from providers.runtime import failures, registry

logger = logging.getLogger(__name__)

# ValidationJob.purpose: what a success does besides the verdict.
TAKE_OVER = "take_over"  # the credential becomes the active one
REVISION = "revision"  # the credential's pending revision is checked, and applied


def _what_to_check(target: CheckedConfig, purpose: str = "") -> tuple[str, str]:
    if isinstance(target, ProviderCredential):
        manifest = selectors.manifest_get(target.provider)
        values = target.pending if purpose == REVISION else target.config
        return routing.validation_model(manifest, values)
    if isinstance(target, CustomModel | LoadBalancingEntry):
        return target.model_type, target.model
    raise TypeError(f"Cannot validate {type(target).__name__}")


def validation_queue(
    *,
    target: CheckedConfig,
    model_type: str | None = None,
    model: str | None = None,
    purpose: str = "",
) -> ValidationJob:
    """Write the job, mark the target as being checked, and enqueue once the data is committed."""
    job = validation_create(target=target, model_type=model_type, model=model, purpose=purpose)
    transaction.on_commit(lambda: _publish(job.pk))
    return job


def _publish(job_id: int) -> None:
    """Send a committed job to the workers. If the queue cannot take it now (Redis is away), what
    it checks is saved all the same: the job row waits, queued, and the sweep sends it once the
    queue is back (after JOB_QUEUED_TIMEOUT), so nothing is lost and the save is not undone."""
    try:
        tasks.validate.delay(job_id)
    except Exception as exc:  # noqa: BLE001 - kombu's OperationalError, redis errors, ...
        logger.warning("Validation job %s not queued now, the sweep will send it (%s)", job_id, exc)


def job_latest(*, target: CheckedConfig, since: datetime) -> ValidationJob | None:
    """The newest check of `target` queued at or after `since` (what a save just queued)."""
    return (
        ValidationJob.objects.filter(**{_field(target): target}, created_at__gte=since)
        .order_by("-created_at", "-id")
        .first()
    )


def job_get(*, tenant_id: int, provider: str, job_id: int) -> ValidationJob:
    job = ValidationJob.objects.filter(tenant_id=tenant_id, provider=provider, pk=job_id).first()
    if job is None:
        raise errors.NotFound("No such check.")
    return job


def validation_create(
    *,
    target: CheckedConfig,
    model_type: str | None = None,
    model: str | None = None,
    purpose: str = "",
) -> ValidationJob:
    """Write the job and mark the target as being checked. A provider credential is checked with
    `model` when given, else as `_what_to_check` says. A revision's check leaves the credential
    as it is: its stored values stay in use until the revision passes."""
    registry.adapter_class(selectors.manifest_get(target.provider).runtime.family)  # supported?
    if model_type is None or model is None:
        model_type, model = _what_to_check(target, purpose)
    kind = {
        ProviderCredential: "credential",
        CustomModel: "custom_model",
        LoadBalancingEntry: "lb_entry",
    }[type(target)]
    job = ValidationJob.objects.create(
        tenant=target.tenant,
        provider=target.provider,
        model_type=model_type,
        model=model,
        purpose=purpose,
        **{kind: target},
    )
    if purpose == REVISION:
        return job
    # .update(): the check does not change the row's values, so its updated_at (the key of the
    # decrypted-credential cache) stays.
    type(target).objects.filter(pk=target.pk).update(status=CheckStatus.VALIDATING)
    target.status = CheckStatus.VALIDATING
    balancing.settings_changed(target.tenant_id)  # routes skip invalid rows
    return job


def _claim(job: ValidationJob) -> bool:
    """queued (or running with its lease run out) -> running, with a lease; False when the job
    finished or a live worker runs it."""
    now = timezone.now()
    claimed = (
        ValidationJob.objects.filter(pk=job.pk)
        .filter(jobs.claimable(now))
        .update(
            status=JobStatus.RUNNING,
            started_at=now,
            lease_until=jobs.lease_end(),
            attempts=F("attempts") + 1,
        )
    )
    return bool(claimed)


def validation_run(*, job_id: int, defer: Callable[[], object] | None = None) -> None:
    """Run one validation job (idempotent: a finished job, or one a live worker runs, is left
    alone). A worker's task passes `defer`, called instead while the workspace has its share of
    the workers busy (jobs.fair_turn)."""
    job = ValidationJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    turn = jobs.fair_turn(ValidationJob, job.pk, job.tenant_id) if defer else nullcontext(True)
    with turn as may_run:
        if not may_run:
            defer()
            return
        if not _claim(job):
            return
        with jobs.LEASES.held(ValidationJob, job.pk):
            _run(job)


def _run(job: ValidationJob) -> None:
    target = job.target
    started = time.perf_counter()
    details: dict = {}
    secrets: tuple[str, ...] = ()
    try:
        if target is None:
            raise errors.NotFound("What this job was to check has been deleted.")
        row = (
            target.credential
            if isinstance(target, LoadBalancingEntry) and target.credential
            else target
        )
        manifest = selectors.manifest_get(job.provider)
        if job.purpose == REVISION:
            if not revisions.has_revision(target):
                raise errors.Conflict("Those changes were replaced or dropped; save again.")
            where = routing.endpoint(manifest, revisions.reveal(target))
            adapter = routing.adapter_for_endpoint(manifest, where)
        else:
            adapter = routing.adapter_for(manifest, row)
        secrets = adapter.secret_values()
        release_while_waiting()  # no database connection held while the backend answers
        result = adapter.validate(job.model, job.model_type)
        details = dict(result.details)
        error: errors.ServiceError | None = None
    except errors.ServiceError as exc:
        error = exc
    except OperationalError:
        raise  # the database is away: the task retries the whole job
    except Exception as exc:  # noqa: BLE001 - the task's edge: whatever broke, the job ends
        error = jobs.unexpected(exc, job=f"Validation job {job.pk}", secrets=secrets)
    latency = int((time.perf_counter() - started) * 1000)
    _finish(job, target, error=error, details=details, latency=latency)


def sweep_stuck_validations() -> dict[str, int]:
    """Queue lost validation jobs again; one lost for good leaves its target invalid."""
    return jobs.sweep(ValidationJob, requeue=tasks.validate.delay, on_lost=_settle_lost)


@transaction.atomic
def _settle_lost(job_id: int) -> None:
    job = ValidationJob.objects.get(pk=job_id)
    lost = errors.ServiceError("The check was lost; check again.", code="lost")
    _settle_target(job, job.target, error=lost, details={}, now=timezone.now())


@transaction.atomic
def _finish(
    job: ValidationJob,
    target: CheckedConfig | None,
    *,
    error: errors.ServiceError | None,
    details: dict,
    latency: int,
) -> None:
    now = timezone.now()
    ValidationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED if error is None else JobStatus.FAILED,
        valid=error is None,
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        details=details,
        latency_ms=latency,
        finished_at=now,
    )
    _settle_target(job, target, error=error, details=details, now=now)


def _settle_target(
    job: ValidationJob,
    target: CheckedConfig | None,
    *,
    error: errors.ServiceError | None,
    details: dict,
    now: datetime,
) -> None:
    """Copy the job's verdict onto what it checked, unless a newer check of it exists."""
    if target is None:
        return
    kind = type(target)
    newer = ValidationJob.objects.filter(**{_field(target): target}, created_at__gt=job.created_at)
    if job.purpose == REVISION:
        # The stored values stay as they are; only a pass changes them (the job keeps a failure).
        if error is None and not newer.filter(purpose=REVISION).exists():
            services.credential_revision_apply(credential_id=target.pk)
            balancing.settings_changed(target.tenant_id)
        return
    if newer.exclude(purpose=REVISION).exists():
        return  # a later check of newer values owns the verdict
    # A check cut short by the backend's passing state (a rate limit, a 5xx, a timeout) says
    # nothing against the credentials: they stay usable, unchecked, with what happened.
    transient = error is not None and error.retryable
    fields = {
        "status": CheckStatus.VALID
        if error is None
        else (CheckStatus.UNCHECKED if transient else CheckStatus.INVALID),
        "validated_at": now,
        "last_error": (
            failures.CHECK_UNFINISHED.format(message=error.message.rstrip("."))
            if transient
            else error.message
        )
        if error
        else "",
    }
    if isinstance(target, CustomModel):
        fields["details"] = details
    kind.objects.filter(pk=target.pk).update(**fields)
    balancing.settings_changed(target.tenant_id)
    if fields["status"] == CheckStatus.VALID:  # it works now: no need to wait out a cool-down
        if isinstance(target, LoadBalancingEntry):
            balancing.rested(target.tenant_id, balancing.lb_entry_key(target.pk))
        elif isinstance(target, CustomModel):
            balancing.rested(target.tenant_id, balancing.own_key(custom_model_id=target.pk))
    if fields["status"] == CheckStatus.VALID and job.purpose == TAKE_OVER:
        target.refresh_from_db()
        if not target.is_active:
            services.credential_activate(credential=target, actor=None)
    if fields["status"] == CheckStatus.INVALID:
        services.prune_defaults(target.tenant)


def _field(target: CheckedConfig) -> str:
    if isinstance(target, ProviderCredential):
        return "credential"
    if isinstance(target, CustomModel):
        return "custom_model"
    return "lb_entry"

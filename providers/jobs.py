"""What validation and invocation jobs share: the stuck-job sweep, and how a job ends when
something unexpected breaks inside it. Each app sweeps and finishes its own rows with these.

A worker claims a job (queued -> running) with a lease, `lease_until`, which `LEASES` renews while
the job runs: a running job whose lease has run out is one whose worker died. Only such a job, or
a queued one, can be claimed; so a task delivered twice (Redis redelivers an unacknowledged task
after its visibility timeout) or re-sent by the sweep never runs a live job a second time.

Fairness: at most WORKSPACE_JOB_CONCURRENCY jobs of one workspace run at once across all
workers (`SLOTS`, a sorted set per workspace in Redis whose members the lease thread renews). A
job that finds its workspace's slots taken is not run: its task is sent again a moment later and
the worker thread is free for another workspace's job, so one workspace's slow backend cannot
queue everybody else's jobs behind its own.

The sweep is the second net, driven by the database rows: a job queued past `JOB_QUEUED_TIMEOUT`,
or running with its lease run out, is queued again, up to `JOB_MAX_ATTEMPTS` tries, then failed
as `lost`. Running it twice is harmless: every change is a conditional update on the status it saw.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, models
from django.db.models import Q
from django.utils import timezone

from config import errors, shared_state
from config.redact import scrub_values
from providers.models import JobStatus
from providers.runtime import failures

logger = logging.getLogger(__name__)

MAX_MESSAGE = 300
LOST_MESSAGE = failures.JOB_LOST


def lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def lapsed(now: datetime) -> Q:
    """Running jobs whose worker is gone: their lease ran out (or, from before leases, they
    started a lease's length ago and never had one)."""
    lease = timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return Q(status=JobStatus.RUNNING, lease_until__lt=now) | Q(
        status=JobStatus.RUNNING, lease_until__isnull=True, started_at__lt=now - lease
    )


def claimable(now: datetime) -> Q:
    """The jobs a worker may claim: queued ones, and running ones whose worker is gone."""
    return Q(status=JobStatus.QUEUED) | lapsed(now)


class WorkspaceSlots:
    """How many jobs of each workspace run now, across every worker: `mps:running:{tenant}` is a
    sorted set of "{kind}:{id}:{delivery}" members scored by when they lapse (a lease's length
    ahead, renewed with the job's lease), so a slot whose worker died frees itself. If Redis cannot
    be reached the job runs (the broker that delivered it is likely gone too; running beats
    stalling)."""

    _TAKE = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
      redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
      redis.call('EXPIRE', KEYS[1], ARGV[5])
      return 1
    end
    return 0
    """

    @staticmethod
    def key(tenant_id: int) -> str:
        return f"mps:running:{tenant_id}"

    def take(self, tenant_id: int, member: str) -> bool:
        now = time.time()
        try:
            return bool(
                shared_state.client().eval(
                    self._TAKE,
                    1,
                    self.key(tenant_id),
                    now,
                    now + settings.JOB_LEASE_SECONDS,
                    settings.WORKSPACE_JOB_CONCURRENCY,
                    member,
                    int(settings.JOB_LEASE_SECONDS) + 1,
                )
            )
        except Exception:  # noqa: BLE001 - Redis away: run rather than stall (see the class)
            logger.warning("Could not count the workspace's running jobs; running this one.")
            return True

    def renew(self, members: Iterable[tuple[int, str]]) -> None:
        until = time.time() + settings.JOB_LEASE_SECONDS
        pipe = shared_state.client().pipeline(transaction=False)
        for tenant_id, member in members:
            pipe.zadd(self.key(tenant_id), {member: until}, xx=True)
            pipe.expire(self.key(tenant_id), int(settings.JOB_LEASE_SECONDS) + 1)
        pipe.execute()

    def release(self, tenant_id: int, member: str) -> None:
        try:
            shared_state.client().zrem(self.key(tenant_id), member)
        except Exception:  # noqa: BLE001 - the slot lapses by itself
            logger.warning("Could not free a workspace's job slot; it lapses by itself.")


SLOTS = WorkspaceSlots()


@contextlib.contextmanager
def fair_turn(model: type[models.Model], pk: int, tenant_id: int | None) -> Iterator[bool]:
    """Whether job `pk` may run now under its workspace's share of the workers (see the module
    docstring); the slot is held while the block runs. When it may not, the job is left queued
    with its sweep clock restarted, for the caller to send its task again a moment later."""
    if tenant_id is None:  # a task the sweep sent names the job only
        tenant_id = model.objects.filter(pk=pk).values_list("tenant_id", flat=True).first()
        if tenant_id is None:  # deleted: nothing will run
            yield True
            return
    # One member per delivery: a task delivered twice must not free the slot of the one running.
    member = f"{model._meta.model_name}:{pk}:{uuid.uuid4().hex[:12]}"
    if not SLOTS.take(tenant_id, member):
        model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(started_at=timezone.now())
        yield False
        return
    try:
        with LEASES.slot(tenant_id, member):
            yield True
    finally:
        SLOTS.release(tenant_id, member)


class Leases:
    """The jobs this process runs, whose leases (and workspace slots) one thread renews every
    third of JOB_LEASE_SECONDS (one UPDATE per job model, whatever the number of jobs)."""

    def __init__(self) -> None:
        self._held: Counter[tuple[type[models.Model], int]] = Counter()
        self._slots: Counter[tuple[int, str]] = Counter()
        self._lock = threading.Lock()
        self._pid = 0  # the process whose renewing thread runs (a fork starts its own)

    @contextlib.contextmanager
    def held(self, model: type[models.Model], pk: int) -> Iterator[None]:
        """Keep `model` row `pk`'s lease while the block runs."""
        with self._counted(self._held, (model, pk)):
            yield

    @contextlib.contextmanager
    def slot(self, tenant_id: int, member: str) -> Iterator[None]:
        """Keep a workspace slot (`SLOTS`) from lapsing while the block runs."""
        with self._counted(self._slots, (tenant_id, member)):
            yield

    @contextlib.contextmanager
    def _counted(self, counter: Counter, key: tuple) -> Iterator[None]:
        with self._lock:
            counter[key] += 1
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._renew_forever, name="job-leases", daemon=True).start()
        try:
            yield
        finally:
            with self._lock:
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    def renew(self) -> None:
        with self._lock:
            by_model: dict[type[models.Model], list[int]] = {}
            for model, pk in self._held:
                by_model.setdefault(model, []).append(pk)
            slots = list(self._slots)
        for model, pks in by_model.items():
            model.objects.filter(pk__in=pks, status=JobStatus.RUNNING).update(
                lease_until=lease_end()
            )
        if slots:
            SLOTS.renew(slots)

    def _renew_forever(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(settings.JOB_LEASE_SECONDS / 3)
            try:
                self.renew()
            except Exception:  # the database away for a while: the next round tries again
                logger.exception("Renewing the leases of running jobs failed.")
            finally:
                connections.close_all()  # this thread's own connections, not kept idle


LEASES = Leases()


def _stuck(model: type[models.Model]) -> list:
    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT)
    return list(
        model.objects.filter(
            # started_at is also when a sweep last re-sent a queued job
            Q(status=JobStatus.QUEUED, started_at__isnull=True, created_at__lt=queued_before)
            | Q(status=JobStatus.QUEUED, started_at__lt=queued_before)
            | lapsed(now)
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

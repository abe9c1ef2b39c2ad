"""Re-enqueue invocations that a lost worker (killed, restarted, network cut) left queued or
running, and fail those out of attempts as `lost` (see `providers.jobs`)."""

from __future__ import annotations

from invocations import tasks
from invocations.models import Invocation
from providers import jobs


def sweep_stuck_jobs() -> dict[str, int]:
    return jobs.sweep(Invocation, requeue=tasks.run.delay)

"""The Celery app: `celery -A config worker`. Redis is the broker; results live in database rows."""

import os

from celery import Celery, signals
from django.db import close_old_connections, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
_OWN_PROCESS = os.getpid()  # where this module was imported: not a prefork pool's child


@signals.worker_process_init.connect
def _close_connections_properly(**_: object) -> None:
    """The solo pool sends worker_process_init in the worker's own process (the prefork pool, in
    each forked child). Celery's Django fixup answers it by closing the file descriptor under every
    open database connection, as a child must for connections it inherited. In the worker's own
    process, with a connection pool (DB_POOL), that connection then went back to the pool with its
    socket closed; a later task took it, and its health check waited forever on the descriptor's
    new owner (the test suite's in-process worker hung so). Here, before the fixup (connected
    later), connections this process opened are closed as they should be: back to the pool."""
    if os.getpid() == _OWN_PROCESS:
        connections.close_all()


@signals.task_prerun.connect
def _keep_database_connections(task: object = None, **_: object) -> None:
    """What Django does before each request, before each task: close a connection older than
    CONN_MAX_AGE or left unusable by an error, and keep the others. (Celery's own habit, without
    CELERY_DB_REUSE_MAX, is to close them all around every task: a new connection per job.)"""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


@signals.task_postrun.connect
def _return_database_connections(task: object = None, **_: object) -> None:
    """What Django does after each request, after each task: with a connection pool (CONN_MAX_AGE
    0) the task's connection goes back to the pool, for the worker's other threads; without one it
    is kept for the next task. A worker thread that kept a pooled connection between tasks would
    hold it idle, and one that ended holding it would take it from the pool for good."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()

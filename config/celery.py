"""The Celery app: `celery -A config worker`. Redis is the broker; results live in database rows."""

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _keep_database_connections(task: object = None, **_: object) -> None:
    """What Django does before each request, before each task: close a connection older than
    CONN_MAX_AGE or left unusable by an error, and keep the others. (Celery's own habit, without
    CELERY_DB_REUSE_MAX, is to close them all around every task: a new connection per job.)"""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()

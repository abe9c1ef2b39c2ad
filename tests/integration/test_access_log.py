"""gunicorn's access log (scripts/run writes it to web.log) does not keep an invitation link's
token: a real gunicorn with the logger class scripts/run gives it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from django.conf import settings

from config.gunicorn_log import scrub
from tests.jobs import ROOT, _database_url, free_port

TOKEN = "inv-token-that-must-not-be-logged-0123456789"


def test_scrub_hides_the_token_and_keeps_the_rest() -> None:
    line = f'"GET /invite/{TOKEN}/?x=1 HTTP/1.1" 302'
    assert scrub(line) == '"GET /invite/…/?x=1 HTTP/1.1" 302'
    assert scrub("/invite/") == "/invite/"  # the page itself carries no token


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_the_access_log_never_holds_an_invitation_token() -> None:
    port = free_port()
    log = settings.DATA_DIR / f"access-{port}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATA_DIR": str(settings.DATA_DIR),
    }
    web = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--threads", "2", "--no-control-socket",
         "--access-logfile", str(log), "--logger-class", "config.gunicorn_log.ScrubbedLogger"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/invite/{TOKEN}/",
                    headers={"Referer": f"http://127.0.0.1:{port}/invite/{TOKEN}/"},
                )
                break
            except httpx.ConnectError:
                assert web.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code in {302, 404}
    finally:
        web.terminate()
        web.wait(10)
    logged = log.read_text()
    assert "/invite/…/" in logged
    assert TOKEN not in logged

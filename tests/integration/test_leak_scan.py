"""The leak scan: the whole flow with one distinctive provider key, then a search for that key, and
its obvious transforms, everywhere the service writes or answers.

Real processes: gunicorn (as scripts/run serves) and a Celery worker (threads pool), both logging
at DEBUG to files; a local OpenAI fake whose key is `sk-LEAKCANARY-<random>`. The flow: save the
credential and a custom model (API), check both through the worker, invoke chat, a streamed chat
and embeddings through POST /api/v1/invocations and the /v1 gateway, make the backend answer with
errors that quote the key (the fake's "echo_key") and refuse it (401) on each path, view the
settings pages and the admin (credential, invocations, validation jobs, audit log). Meanwhile every
Redis command is recorded (MONITOR: every Celery message and cache write as sent), and a job and a
check are left in the broker's queue with no worker to take them.

Searched, for the key, its random middle, its base64 (every alignment) and its URL-encoding, case
insensitively: every HTTP response's status line, headers and body; the web and worker logs;
every Redis command seen, then every key and value left (SCAN); every column of every table
(except the encrypted credential columns, which must hold envelopes, never the key); every file
under DATA_DIR (media, the SQLite file if that is the database). Prints the table (`-s`).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import redis
import requests
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from config.celery import app
from providers.models import ProviderCredential
from tenants import services as tenant_services
from tenants.crypto import ENVELOPE_PREFIX
from tenants.fields import SecretsJSONField
from tenants.models import ApiKeyScope
from tests.fakes.openai_server import OpenAIFake
from tests.jobs import start_web_process, start_worker_process

pytestmark = pytest.mark.processes

SECRET = f"sk-LEAKCANARY-{secrets.token_hex(12)}"
MIDDLE = SECRET.split("-", 2)[2]  # the random part alone
CHAT = {"messages": [{"role": "user", "content": "hello canary"}]}


def _needles(secret: str) -> dict[str, str]:
    """What would betray the key: itself, its random middle, its URL-encoding, and its base64 as
    it appears inside any base64 text that contains it (three alignments, edges trimmed)."""
    found = {"key": secret, "middle": secret.split("-", 2)[2]}
    found["url-encoded"] = urllib.parse.quote(secret, safe="")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + secret.encode()).decode()
        core = encoded[4:-4]
        found[f"base64 ({pad})"] = core
        found[f"urlsafe base64 ({pad})"] = core.replace("+", "-").replace("/", "_")
    return found


NEEDLES = _needles(SECRET)
PATTERN = re.compile("|".join(re.escape(n) for n in set(NEEDLES.values())), re.IGNORECASE)


class Places:
    """Where we looked, how much, and what we found."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}  # place -> [items, bytes, hits]

    def scan(self, place: str, text: str | bytes, where: str = "") -> None:
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        row = self.rows.setdefault(place, [0, 0, []])
        row[0] += 1
        row[1] += len(text)
        for match in PATTERN.finditer(text):
            start = max(0, match.start() - 60)
            row[2].append(f"{where}: …{text[start : match.end() + 60]}…")

    def table(self) -> str:
        lines = [f"{'place':<44}{'items':>8}{'bytes':>12}{'hits':>6}"]
        for place, (items, size, hits) in self.rows.items():
            lines.append(f"{place:<44}{items:>8}{size:>12}{len(hits):>6}")
        return "\n".join(lines)

    def hits(self) -> list[str]:
        return [f"{place}: {hit}" for place, row in self.rows.items() for hit in row[2]]


class Recorder(requests.Session):
    """A session that keeps every response: status, headers and body."""

    def __init__(self, places: Places, kind: str) -> None:
        super().__init__()
        self.places, self.kind = places, kind

    def request(self, method, url, **kwargs):  # type: ignore[override]
        response = super().request(method, url, **kwargs)
        head = f"{response.status_code} {response.reason}\n" + "\n".join(
            f"{k}: {v}" for k, v in response.headers.items()
        )
        self.places.scan(f"HTTP responses ({self.kind})", head + "\n\n" + response.text, url)
        return response


def _monitor(client: redis.Redis, seen: list[str], stop: threading.Event) -> None:
    with client.monitor() as monitor:
        for command in monitor.listen():
            seen.append(command["command"])
            if stop.is_set():
                return


def _dump_redis(client: redis.Redis, places: Places) -> None:
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = client.dump(key)
        places.scan("Redis keys and values (SCAN)", repr(key) + repr(value), key.decode())
        if kind == "list" and key.decode() in ("celery", "celery\x06\x163"):
            for message in value:
                body = json.loads(message)
                places.scan(
                    "Celery messages left in the queue",
                    message + base64.b64decode(body.get("body", "")),
                )


def _encrypted_columns() -> dict[tuple[str, str], bool]:
    """(table, column) -> whether it is a JSON object of envelopes (else the wrapped key)."""
    found = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, SecretsJSONField) or field.name == "wrapped_private_key":
                found[(model._meta.db_table, field.column)] = isinstance(field, SecretsJSONField)
    return found


def _scan_database(places: Places) -> dict[str, int]:
    encrypted = _encrypted_columns()
    envelopes = 0
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = value.tobytes() if isinstance(value, memoryview) else value
                    text = text if isinstance(text, bytes) else str(text)
                    if (table, column) in encrypted:
                        places.scan("database: encrypted columns", text, f"{table}.{column}")
                        if encrypted[(table, column)] and value:
                            config = value if isinstance(value, dict) else json.loads(value)
                            envelopes += sum(
                                1
                                for v in config.values()
                                if isinstance(v, str) and v.startswith(ENVELOPE_PREFIX)
                            )
                        continue
                    places.scan("database: every other column", text, f"{table}.{column}")
    return {"envelopes": envelopes}


def _read_elsewhere(path: Path) -> bytes:
    """A file's bytes, read by another process. Opening and closing the SQLite file (or its -wal or
    -shm) here would drop this process's POSIX locks on it, which SQLite's own connection still
    counts on: the later tests then met "disk I/O error" (sqlite.org/howtocorrupt.html, 2.2)."""
    return subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout  # noqa: S603, S607


@pytest.mark.django_db(transaction=True)
def test_the_key_is_nowhere(tenant, tmp_path) -> None:
    places = Places()
    data_dir = Path(settings.DATA_DIR)
    logs = {"web": None, "worker": tmp_path / "worker.log"}
    broker = redis.Redis.from_url(settings.REDIS_URL)
    seen: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_monitor, args=(broker, seen, stop), daemon=True)
    watcher.start()

    _, raw_key = tenant_services.api_key_create(
        tenant=tenant, name="scan", scopes=list(ApiKeyScope.values)
    )
    User = get_user_model()
    User.objects.create_superuser("root", "root@example.com", "root-password-1")
    tenant_services.membership_set(
        tenant=tenant, user=User.objects.get(username="root"), role="owner"
    )
    app.control.purge()
    debug = {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    web, base = start_web_process(threads=8, **debug)
    logs["web"] = web.log
    worker = start_worker_process("scan", threads=4, log=logs["worker"], loglevel="DEBUG", **debug)
    api = Recorder(places, "API key")
    api.headers["Authorization"] = f"Bearer {raw_key}"
    try:
        with OpenAIFake(api_key=SECRET) as fake:
            _flow(api, base, fake, places)
            # Pages and the admin, as a signed-in operator.
            browser = Recorder(places, "pages and admin")
            login = browser.get(f"{base}/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
            signed_in = browser.post(
                f"{base}/admin/login/?next=/admin/",
                data={"username": "root", "password": "root-password-1",
                      "csrfmiddlewaretoken": token},
            )  # fmt: skip
            assert signed_in.url.endswith("/admin/"), signed_in.status_code
            credential = ProviderCredential.objects.get(tenant=tenant)
            for path in [
                "/settings/model-providers/",
                "/settings/model-providers/openai/card",
                "/settings/model-providers/openai/setup",
                "/settings/model-providers/openai/models",
                "/settings/usage/",
                "/settings/api-keys/",
                "/admin/",
                "/admin/providers/providercredential/",
                f"/admin/providers/providercredential/{credential.pk}/change/",
                "/admin/providers/custommodel/",
                "/admin/providers/validationjob/",
                "/admin/providers/auditlogentry/",
                "/admin/invocations/invocation/",
                *[f"/admin/invocations/invocation/{pk}/change/" for pk in _invocation_ids(tenant)],
            ]:
                page = browser.get(f"{base}{path}")
                assert page.status_code in (200, 302), (path, page.status_code)
            # A job and a check left in the broker's queue: no worker to take them.
            worker.terminate()
            worker.wait(20)
            queued = api.post(
                f"{base}/api/v1/invocations",
                json={"model_type": "llm", "provider": "openai", "model": "gpt-4o-mini",
                      "input": CHAT},
            )  # fmt: skip
            assert queued.status_code == 202, queued.text
            check = api.post(
                f"{base}/api/v1/model-providers/openai/credentials/{credential.pk}/validate"
            )
            assert check.status_code == 202, check.text
            _dump_redis(broker, places)
    finally:
        stop.set()
        broker.ping()  # one more command lets the monitor see `stop`
        for process in (worker, web):
            if process.poll() is None:
                process.terminate()
                process.wait(20)
    watcher.join(5)
    for command in seen:
        places.scan("Redis commands (MONITOR, Celery messages)", command)
    for name, path in logs.items():
        places.scan(f"log: {name}", _read_elsewhere(path), str(path))
    found = _scan_database(places)
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and path not in logs.values() and "redis" not in path.parts:
            places.scan("files under DATA_DIR (media, SQLite)", _read_elsewhere(path), str(path))

    # The table: shown with -s, and with a failure.
    print(f"\nleak scan for {SECRET[:14]}… ({len(NEEDLES)} forms)\n{places.table()}")
    print(f"credential secrets stored as envelopes: {found['envelopes']}")
    assert len(fake.received) >= 10, "the flow did not reach the backend"
    assert found["envelopes"] >= 2  # the credential's key and the custom model's
    assert places.rows["log: worker"][1] > 0
    assert places.rows["log: web"][1] > 0
    leaks = [hit for hit in places.hits() if not hit.startswith("database: encrypted columns")]
    assert leaks == [], "\n".join(leaks[:20])
    assert places.rows["database: encrypted columns"][2] == []


def _invocation_ids(tenant) -> list[int]:
    from invocations.models import Invocation

    return list(Invocation.objects.filter(tenant=tenant).values_list("pk", flat=True)[:6])


def _wait_job(api: Recorder, url: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        body = api.get(url).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def _flow(api: Recorder, base: str, fake: OpenAIFake, places: Places) -> None:
    providers = f"{base}/api/v1/model-providers"
    made = api.post(
        f"{providers}/openai/credentials",
        json={"name": "main", "credentials": {"openai_api_key": SECRET,
                                              "openai_api_base": fake.url}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    credential = made.json()["id"]
    model = api.post(
        f"{providers}/openai_api_compatible/models",
        json={"model": "gpt-4o-mini", "model_type": "llm",
              "credentials": {"endpoint_url": f"{fake.url}/v1", "api_key": SECRET}},
    )  # fmt: skip
    assert model.status_code == 201, model.text
    api.get(f"{providers}/openai/credentials")
    api.get(f"{providers}/openai/credentials/{credential}")
    api.get(f"{providers}/openai_api_compatible/models")
    api.get(f"{providers}/openai")
    api.get(f"{base}/api/v1/audit-log")

    def job(kind: str, model_name: str, payload: dict) -> dict:
        queued = api.post(
            f"{base}/api/v1/invocations?wait=20",
            json={"model_type": kind, "provider": "openai", "model": model_name,
                  "input": payload},
        )  # fmt: skip
        assert queued.status_code in (200, 202), queued.text
        return _wait_job(api, f"{base}/api/v1/invocations/{queued.json()['id']}")

    def checked() -> bool:
        check = api.post(f"{providers}/openai/credentials/{credential}/validate")
        assert check.status_code == 202, check.text
        return _wait_job(api, f"{base}/api/v1/validations/{check.json()['id']}")["valid"]

    assert checked() is True
    assert job("llm", "gpt-4o-mini", CHAT)["status"] == "succeeded"
    assert job("text-embedding", "text-embedding-3-small", {"texts": ["canary"]})["status"] == (
        "succeeded"
    )
    gateway = f"{base}/v1"
    chat = {"model": "openai/gpt-4o-mini", **CHAT}
    assert api.post(f"{gateway}/chat/completions", json=chat).status_code == 200
    streamed = api.post(f"{gateway}/chat/completions", json={**chat, "stream": True})
    assert streamed.status_code == 200
    assert "data:" in streamed.text
    embedded = api.post(
        f"{gateway}/embeddings", json={"model": "openai/text-embedding-3-small", "input": "x"}
    )
    assert embedded.status_code == 200, embedded.text
    api.get(f"{gateway}/models")
    # Backends that quote the key in their errors, or refuse it, on every path; the check last
    # (a failed one leaves the credential invalid), then a good check again.
    for mode, status in (("echo_key", 400), ("echo_key", 500), ("401", 401)):
        calls = [
            lambda: job("llm", "gpt-4o-mini", CHAT),
            lambda: api.post(f"{gateway}/chat/completions", json=chat),
            lambda: api.post(f"{gateway}/chat/completions", json={**chat, "stream": True}),
            lambda: api.post(f"{gateway}/embeddings",
                             json={"model": "openai/text-embedding-3-small", "input": "x"}),
            checked,
        ]  # fmt: skip
        for call in calls:
            fake.fail(mode, times=1, status=status)
            call()
        fake.reset()
        assert checked() is True
    api.get(f"{base}/api/v1/invocations?limit=50")
    api.get(f"{base}/api/v1/usage")

#!/usr/bin/env python3
"""Smoke test of the README's first command, as a new user meets it on a fresh machine.

In a copy of the working tree (tracked and new files; no .venv, .env or var/), it runs `scripts/run`
on free ports, which makes its venv from requirements.txt alone. Then: /healthz is 200 with the
database, Redis and a worker ok; every module of the service imports in that venv; a workspace is
made with `manage.py create_tenant`; an OpenAI-compatible custom model pointing at a local fake is
saved and its check ends `valid` through the running worker; one invocation ends `succeeded` with
the fake's answer to what was asked; then SIGINT to `scripts/run` stops it, and no process it
started is left. Started again, with its worker SIGKILLed, it names the worker, shows its last
log lines, stops the rest and exits non-zero. Standard library only (the fake server is too),
so it runs before any venv exists.

    python3 .ci/smoke.py [--keep]     # --keep: leave the copy and its logs for a look
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 300  # includes making the venv: pip from a cold cache
BANNER = "Model Provider Settings is running"
FAKE_KEY = "sk-smoke-0123456789abcdef"

# Every runtime import, checked in the requirements.txt-only venv: each module of the service,
# plus what the servers load by name at start (the broker transport, gunicorn's worker).
IMPORT_AUDIT = """
import importlib, pathlib, django
django.setup()
names = ["kombu.transport.redis", "gunicorn.app.wsgiapp", "gunicorn.workers.sync"]
names.append("celery.bin.celery")
for package in ("config", "tenants", "providers", "invocations"):
    for path in sorted(pathlib.Path(package).rglob("*.py")):
        names.append(".".join(path.with_suffix("").parts).removesuffix(".__init__"))
for name in names:
    importlib.import_module(name)
print(f"{len(names)} modules import")
"""


class SmokeFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_tree(destination: Path) -> None:
    """The files a fresh clone would have, plus uncommitted ones, nothing git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def call(method: str, url: str, *, key: str = "", body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=60) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read() or b"null")


def processes_in(directory: Path) -> dict[int, str]:
    """Running processes whose working directory is inside `directory`: all that scripts/run
    starts work there (the bundled Redis in its data folder below it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if state != "Z" and (cwd == str(directory) or cwd.startswith(f"{directory}/")):
            found[int(entry.name)] = command
    return found


class Stage:
    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"  ok  {what} ({now - self.last:.1f} s)", flush=True)
        self.last = now


def wait_for(what: str, seconds: float, probe, *, alive=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if alive is not None and not alive():
            raise SmokeFailure(f"scripts/run exited while waiting for {what}")
        time.sleep(0.2)
    raise SmokeFailure(f"{what}: not within {seconds:.0f} s")


def smoke(tree: Path, log_path: Path) -> None:
    stage = Stage()
    copy_tree(tree)
    stage.done("copied the tree (no .venv, .env or var/)")

    port, redis_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "DATA_DIR"}
    }
    env.update(HOST="127.0.0.1", PORT=str(port), BUNDLED_REDIS_PORT=str(redis_port))
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            ["scripts/run"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _exercise(tree, run, base, log_path, stage)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    _a_dying_worker_is_reported(tree, env, log_path, stage)
    print(f"smoke: passed in {time.monotonic() - stage.started:.0f} s")


def _a_dying_worker_is_reported(tree: Path, env: dict, log_path: Path, stage: Stage) -> None:
    """Start again (the venv is made), SIGKILL the worker: scripts/run must name it, show its
    last lines, stop the rest and exit non-zero."""
    env = {**env, "PORT": str(free_port()), "BUNDLED_REDIS_PORT": str(free_port())}
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            ["scripts/run"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        alive = lambda: run.poll() is None  # noqa: E731
        wait_for("the second banner", 120, lambda: BANNER in log_path.read_text(), alive=alive)
        worker = next(
            pid for pid, command in processes_in(tree).items() if "celery" in command
            and " worker" in command
        )  # fmt: skip
        os.kill(worker, signal.SIGKILL)
        try:
            code = run.wait(60)
        except subprocess.TimeoutExpired as exc:
            raise SmokeFailure("scripts/run went on after its worker was killed") from exc
        said = log_path.read_text()
        if code == 0 or "The Celery worker stopped (exit code 137)" not in said:
            raise SmokeFailure(f"a killed worker was not reported (exit {code}):\n{said[-2000:]}")
        if "Its last lines" not in said:
            raise SmokeFailure("the report of the killed worker shows none of its log lines")
        deadline = time.monotonic() + 2
        while (left := processes_in(tree)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if left:
            raise SmokeFailure(f"processes left after the worker died: {left}")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    stage.done(f"a SIGKILLed worker: named with its last lines, exit {code}, nothing left")


def _exercise(tree: Path, run: subprocess.Popen, base: str, log_path: Path, stage: Stage) -> None:
    alive = lambda: run.poll() is None  # noqa: E731
    wait_for("the banner", STARTUP_SECONDS, lambda: BANNER in log_path.read_text(), alive=alive)
    stage.done("scripts/run printed its banner (venv from requirements.txt only)")

    status, health = call("GET", f"{base}/healthz")
    checks = health["checks"]
    if status != 200 or not all(checks[n]["ok"] for n in ("database", "redis", "worker")):
        raise SmokeFailure(f"/healthz after the banner: {status} {health}")
    stage.done("/healthz 200: database, redis and worker ok")

    python = str(tree / ".venv" / "bin" / "python")
    extra = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout
    if "pytest" in extra:
        raise SmokeFailure("the service's venv holds pytest: not made from requirements.txt alone")
    audit = subprocess.run(
        [python, "-c", IMPORT_AUDIT], cwd=tree, capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )  # fmt: skip
    if audit.returncode != 0:
        raise SmokeFailure(f"a runtime import fails in the service's venv:\n{audit.stderr}")
    stage.done(f"import audit: {audit.stdout.strip()} with requirements.txt alone")

    made = subprocess.run(
        [python, "manage.py", "create_tenant", "Smoke", "--owner-email", "smoke@example.com"],
        cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = next(line.split(": ", 1)[1] for line in made.stdout.splitlines() if "api_key:" in line)
    stage.done("manage.py create_tenant made a workspace and a key")

    sys.path.insert(0, str(tree))
    from tests.fakes.openai_server import OpenAIFake

    with OpenAIFake(api_key=FAKE_KEY, models={"smoke-chat": "llm"}) as fake:
        status, model = call(
            "POST",
            f"{base}/api/v1/model-providers/openai_api_compatible/models",
            key=key,
            body={
                "model": "smoke-chat",
                "model_type": "llm",
                "credentials": {"endpoint_url": f"{fake.url}/v1", "api_key": FAKE_KEY},
            },
        )
        if status != 201:
            raise SmokeFailure(f"saving the custom model: {status} {model}")
        url = f"{base}/api/v1/model-providers/openai_api_compatible/models/{model['id']}"
        checked = wait_for(
            "the model's check",
            60,
            lambda: (m := call("GET", url, key=key)[1])["status"] != "validating" and m,
            alive=alive,
        )
        if checked["status"] != "valid":
            raise SmokeFailure(f"the model's check did not end valid: {checked}")
        stage.done("custom model saved; its check ended valid through the worker")

        status, job = call(
            "POST",
            f"{base}/api/v1/invocations",
            key=key,
            body={
                "model_type": "llm",
                "provider": "openai_api_compatible",
                "model": "smoke-chat",
                "input": {"messages": [{"role": "user", "content": "smoke test"}]},
            },
        )
        if status != 202:
            raise SmokeFailure(f"queueing an invocation: {status} {job}")
        done = wait_for(
            "the invocation",
            60,
            lambda: (
                (j := call("GET", f"{base}/api/v1/invocations/{job['id']}?wait=5", key=key)[1])[
                    "status"
                ]
                in {"succeeded", "failed"}
                and j
            ),
            alive=alive,
        )
        if done["status"] != "succeeded" or done["result"]["text"] != "You said: smoke test":
            raise SmokeFailure(f"the invocation: {done}")
        asked = [r for r in fake.received if r.path == "/v1/chat/completions"]
        if not asked or asked[-1].header("authorization") != f"Bearer {FAKE_KEY}":
            raise SmokeFailure("the fake did not receive the call with the saved key")
    stage.done("one invocation succeeded with the fake's answer")

    ours = processes_in(tree)
    if len(ours) < 4:
        raise SmokeFailure(f"expected scripts/run, Redis, a worker and gunicorn; saw {ours}")
    os.kill(run.pid, signal.SIGINT)
    try:
        code = run.wait(90)
    except subprocess.TimeoutExpired as exc:
        raise SmokeFailure("scripts/run did not stop within 90 s of SIGINT") from exc
    if code != 0:
        raise SmokeFailure(f"scripts/run exited {code} after SIGINT")
    deadline = time.monotonic() + 2  # time for the kernel to reap what just exited
    while (left := processes_in(tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        raise SmokeFailure(f"processes left after scripts/run stopped: {left}")
    stage.done(f"SIGINT: scripts/run exited 0, and none of its {len(ours)} processes is left")


def main() -> int:
    keep = "--keep" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="mps-smoke-"))
    tree, log_path = work / "tree", work / "run.log"
    print(f"smoke: the README's first command, in {tree}", flush=True)
    try:
        smoke(tree, log_path)
    except (SmokeFailure, subprocess.CalledProcessError, OSError, KeyError) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        if isinstance(exc, subprocess.CalledProcessError):
            print(exc.stdout, exc.stderr, file=sys.stderr)
        if log_path.exists():
            print("--- scripts/run's output (last 60 lines) ---", file=sys.stderr)
            print("\n".join(log_path.read_text().splitlines()[-60:]), file=sys.stderr)
        left = processes_in(tree)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        if left:
            print(f"--- processes left behind: {left}", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

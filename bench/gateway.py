"""The OpenAI-compatible gateway against a fast local backend, side by side with direct calls to
that backend, in one run.

    .venv/bin/python bench/gateway.py [--calls 600] [--levels 1,16,64] [--database-url ...]

Starts what `scripts/run` starts (bench/job_path.py's Service: a bundled Redis, gunicorn, a
Celery worker; SQLite unless --database-url) and a fast OpenAI-compatible fake, with a custom
model on it. Then, at each concurrency: chat (non-streaming), chat streamed (time to first
token: the first content chunk), and embeddings, each direct to the fake and through
POST /v1/... . Prints calls/s, p50/p95/p99, what the gateway adds at p50 (and to the first
token), and the web server's CPU per call (from /proc). This machine is shared and noisy:
compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from job_path import FAST_KEY, GUNICORN, Service, cpu_seconds, percentiles, run_load

from tests.fakes.openai_server import OpenAIFake

MESSAGES = [{"role": "user", "content": "hello there, how are you today"}]
CASES = {
    # name: (path, body for the fake, body for the gateway, streamed)
    "chat": ("chat/completions", {"model": "bench-chat", "messages": MESSAGES}, False),
    "stream": (
        "chat/completions",
        {"model": "bench-chat", "messages": MESSAGES, "stream": True},
        True,
    ),
    "embed": ("embeddings", {"model": "bench-embed", "input": ["one text", "another"]}, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per case and level")
    parser.add_argument("--database-url", default="", help="PostgreSQL; SQLite by default")
    parser.add_argument("--gunicorn", default=GUNICORN)
    parser.add_argument("--worker", default="--pool threads --concurrency 4")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels, comma-separated")
    parser.add_argument("--cases", default=",".join(CASES), help="chat, stream, embed")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data_dir,
        OpenAIFake(FAST_KEY, {"bench-chat": "llm", "bench-embed": "text-embedding"}) as fast,
    ):
        service = Service(args, Path(data_dir))
        try:
            service.add_model("bench-chat", fast, FAST_KEY)
            service.add_model("bench-embed", fast, FAST_KEY, model_type="text-embedding")
            report(args, service, fast)
        finally:
            service.stop()


def call(session: requests.Session, url: str, body: dict, key: str, streamed: bool) -> float:
    """One call; returns the time to the first content chunk (streamed) or to the answer, in ms."""
    started = time.perf_counter()
    response = session.post(
        url, json=body, headers={"Authorization": f"Bearer {key}"}, stream=streamed, timeout=30
    )
    response.raise_for_status()
    if not streamed:
        response.json()
        return (time.perf_counter() - started) * 1000
    first = None
    for line in response.iter_lines():
        if first is None and line.startswith(b"data: {"):
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError("the stream carried no content")
    return first


def report(args: argparse.Namespace, service: Service, fast: OpenAIFake) -> None:
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"web: gunicorn {args.gunicorn}; database: {database}; {args.calls} calls each")
    print(f"{'case':<8}{'path':<9}{'c':>4}{'calls/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
          f"{'ttft p50':>9}{'added p50':>10}{'web CPU ms/call':>16}{'errors':>7}")  # fmt: skip
    sessions: dict[int, requests.Session] = {}

    def session(i: int) -> requests.Session:
        return sessions.setdefault(i % 64, requests.Session())

    for concurrency in (int(level) for level in args.levels.split(",")):
        for name in args.cases.split(","):
            path, body, streamed = CASES[name]
            direct_url, gateway_url = f"{fast.url}/v1/{path}", f"{service.base}/v1/{path}"
            routed = {**body, "model": f"openai_api_compatible/{body['model']}"}
            timings: dict[str, list[float]] = {}
            direct_p50 = None
            for where, url, sent, key in (
                ("direct", direct_url, body, FAST_KEY),
                ("gateway", gateway_url, routed, service.key),
            ):
                firsts: list[float] = []

                def one(i, url=url, sent=sent, key=key, firsts=firsts, streamed=streamed) -> None:
                    firsts.append(call(session(i), url, sent, key, streamed))

                before = cpu_seconds([service.web.pid])
                wall, latencies, errors = run_load(one, args.calls, concurrency)
                web_cpu = (cpu_seconds([service.web.pid]) - before) * 1000 / max(1, len(latencies))
                timings[where] = firsts
                p50 = percentiles(latencies)[0] if latencies else 0
                ttft = percentiles(firsts)[0] if streamed and firsts else None
                if where == "direct":
                    direct_p50 = ttft if streamed else p50
                    added = ""
                else:
                    mine = ttft if streamed else p50
                    added = f"{mine - direct_p50:.1f}" if direct_p50 is not None else ""
                p95, p99 = percentiles(latencies)[1:] if latencies else (0, 0)
                print(
                    f"{name:<8}{where:<9}{concurrency:>4}{len(latencies) / wall:>9.0f}{p50:>8.1f}"
                    f"{p95:>8.1f}{p99:>8.1f}{(f'{ttft:.1f}' if ttft is not None else ''):>9}"
                    f"{added:>10}{(f'{web_cpu:.2f}' if where == 'gateway' else ''):>16}{errors:>7}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

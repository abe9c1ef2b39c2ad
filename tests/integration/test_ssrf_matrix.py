"""The SSRF matrix: every bypass the audit tried, as one table, each through a real save (API) and
a real check by a Celery worker, with the outbound guard deciding.

Two internal services listen on loopback and record every connection: 127.0.0.1 (refused when
OUTBOUND_ALLOW_LOOPBACK is false, the shared-server setting) and 127.0.0.2 (refused by
OUTBOUND_DENY_NETWORKS, while the redirecting server on 127.0.0.1 is allowed). Each row says where
the URL is stopped: `save` (a 400 field error, no DNS, nothing stored) or `check` (saved: a host
name is not looked up at save; the worker's check fails with `forbidden_address`), and every row
must leave both services without a single connection. Control rows reach them (the refusals are
the guard's, not a broken setup). RELIABILITY.md lists this table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from django.test import override_settings

from providers.models import CustomModel
from tests.fakes.outbound_servers import Listener, RedirectFake

KEY = "xinf-matrix-key-0001"
NO_LOOPBACK = {"OUTBOUND_ALLOW_LOOPBACK": False}
DENY_2 = {"OUTBOUND_DENY_NETWORKS": ["127.0.0.2/32"]}


@dataclass(frozen=True)
class Row:
    what: str
    url: str  # {p1}: 127.0.0.1's port, {p2}: 127.0.0.2's; {r}: the redirecting server
    stopped: str  # "save", "check", or "reached" (a control)
    policy: dict
    redirect_to: str = ""  # the redirecting server answers 302 to this


MATRIX = [
    # Loopback in every spelling, the server refusing loopback (OUTBOUND_ALLOW_LOOPBACK=false).
    Row("loopback, dotted", "http://127.0.0.1:{p1}", "save", NO_LOOPBACK),
    Row("decimal", "http://2130706433:{p1}", "save", NO_LOOPBACK),
    Row("octal", "http://0177.0.0.1:{p1}", "save", NO_LOOPBACK),
    Row("octal, one number", "http://017700000001:{p1}", "save", NO_LOOPBACK),
    Row("hex", "http://0x7f000001:{p1}", "save", NO_LOOPBACK),
    Row("hex, dotted", "http://0x7f.0x0.0x0.0x1:{p1}", "save", NO_LOOPBACK),
    Row("short form", "http://127.1:{p1}", "save", NO_LOOPBACK),
    Row("trailing dot", "http://127.0.0.1.:{p1}", "save", NO_LOOPBACK),
    Row("IPv6 loopback", "http://[::1]:{p1}", "save", NO_LOOPBACK),
    Row("IPv6-mapped IPv4", "http://[::ffff:127.0.0.1]:{p1}", "save", NO_LOOPBACK),
    Row("IPv6-mapped, hex", "http://[::ffff:7f00:1]:{p1}", "save", NO_LOOPBACK),
    Row("IPv6-mapped, long", "http://[0:0:0:0:0:ffff:127.0.0.1]:{p1}", "save", NO_LOOPBACK),
    Row("IPv4-compatible IPv6", "http://[::127.0.0.1]:{p1}", "save", NO_LOOPBACK),
    Row("NAT64", "http://[64:ff9b::7f00:1]:{p1}", "save", NO_LOOPBACK),
    Row("6to4", "http://[2002:7f00:1::]:{p1}", "save", NO_LOOPBACK),
    Row("userinfo", "http://evil.example@127.0.0.1:{p1}", "save", NO_LOOPBACK),
    Row("userinfo with password", "http://a:b@127.0.0.1:{p1}", "save", NO_LOOPBACK),
    Row("0.0.0.0 (this host)", "http://0.0.0.0:{p1}", "save", NO_LOOPBACK),
    Row("0", "http://0:{p1}", "save", NO_LOOPBACK),
    Row("[::] (this host)", "http://[::]:{p1}", "save", NO_LOOPBACK),
    # Names that resolve to loopback: allowed at save (no DNS), refused when connecting.
    Row("DNS name (localhost)", "http://localhost:{p1}", "check", NO_LOOPBACK),
    Row("DNS name in capitals", "http://LOCALHOST:{p1}", "check", NO_LOOPBACK),
    # A name to the form; the HTTP client decodes it to 127.0.0.1, which the guard then judges.
    Row("percent-encoded host", "http://%31%32%37.0.0.1:{p1}", "check", NO_LOOPBACK),
    Row("userinfo hiding the host", "http://127.0.0.1:{p1}@localhost:{p1}", "check", NO_LOOPBACK),
    # Cloud metadata: refused whatever the settings (loopback allowed here).
    Row("metadata", "http://169.254.169.254/latest/meta-data/", "save", {}),
    Row("metadata, trailing dot", "http://169.254.169.254./", "save", {}),
    Row("metadata, decimal", "http://2852039166/", "save", {}),
    Row("metadata, hex", "http://0xa9fea9fe/", "save", {}),
    Row("metadata, octal", "http://0251.0376.0251.0376/", "save", {}),
    Row("metadata, IPv6-mapped", "http://[::ffff:169.254.169.254]/", "save", {}),
    Row("metadata, IPv6-mapped hex", "http://[::ffff:a9fe:a9fe]/", "save", {}),
    Row("metadata, userinfo", "http://user@169.254.169.254/", "save", {}),
    Row("metadata name (GCP)", "http://metadata.google.internal/computeMetadata/v1/", "save", {}),
    Row("metadata name, capitals and a dot", "http://METADATA.google.internal./", "save", {}),
    Row("AWS IPv6 metadata", "http://[fd00:ec2::254]/", "save", {}),
    Row("AWS ECS task metadata", "http://169.254.170.2/", "save", {}),
    Row("Alibaba metadata", "http://100.100.100.200/", "save", {}),
    Row("link-local", "http://169.254.1.1/", "save", {}),
    # Redirects: an allowed server (127.0.0.1) answers 302 to an internal address.
    Row("redirect to metadata", "{r}", "check", DENY_2, "http://169.254.169.254/latest/"),
    Row("redirect to mapped metadata", "{r}", "check", DENY_2, "http://[::ffff:a9fe:a9fe]/"),
    Row("redirect to a metadata name", "{r}", "check", DENY_2, "http://metadata.google.internal/"),
    Row("redirect to a denied network", "{r}", "check", DENY_2, "http://127.0.0.2:{p2}/"),
    Row("redirect, decimal", "{r}", "check", DENY_2, "http://2130706434:{p2}/"),
    Row("redirect, IPv6-mapped", "{r}", "check", DENY_2, "http://[::ffff:127.0.0.2]:{p2}/"),
    # Controls: the same services, allowed, are reached.
    Row("control: loopback allowed", "http://127.0.0.1:{p1}", "reached", {}),
    Row("control: name, loopback allowed", "http://localhost:{p1}", "reached", {}),
    Row("control: redirect, nothing denied", "{r}", "reached", {}, "http://127.0.0.2:{p2}/"),
]


def _check(client, model_url: str) -> dict:
    job = client.post(f"{model_url}/validate")
    assert job.status_code == 202, job.content
    deadline = time.monotonic() + 20
    while (result := client.get(f"/api/v1/validations/{job.json()['id']}").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, result
        time.sleep(0.05)
    return result


@pytest.mark.usefixtures("celery_worker_thread")
def test_the_ssrf_matrix(key_client) -> None:
    client = key_client()
    outcomes = []
    with Listener("127.0.0.1") as first, Listener("127.0.0.2") as second, RedirectFake() as hop:
        for row in MATRIX:
            ports = {"p1": first.port, "p2": second.port, "r": hop.url}
            url = row.url.format(**ports)
            hop.redirect(row.redirect_to.format(**ports))
            before = len(first.connections) + len(second.connections)
            with override_settings(**row.policy):
                saved = client.post(
                    "/api/v1/model-providers/xinference/models",
                    {"model": "qwen2.5-instruct", "model_type": "llm",
                     "credentials": {"server_url": url, "model_uid": "qwen2.5-instruct",
                                     "api_key": KEY}},
                    format="json",
                )  # fmt: skip
                if saved.status_code == 400:
                    stopped = "save"
                    said = saved.json()["error"]["fields"]["server_url"][0]
                else:
                    assert saved.status_code == 201, (row, saved.content)
                    model_url = f"/api/v1/model-providers/xinference/models/{saved.json()['id']}"
                    result = _check(client, model_url)
                    if result["error_code"] == "forbidden_address":
                        stopped = "check"
                    else:  # a control: told what the listener answered (not a model server)
                        stopped = f"other: {result['error_code'] or 'valid'}"
                    said = result["error_message"] or "valid"
                    CustomModel.objects.filter(pk=saved.json()["custom_model_id"]).delete()
            connections = len(first.connections) + len(second.connections) - before
            if stopped.startswith("other") and connections:
                stopped = "reached"
            outcomes.append((row, stopped, connections, said))

    # The table: shown with -s, and with a failure.
    print(f"\n{'case':<36}{'stopped at':>11}{'conns':>6}  what the user is told")
    for row, stopped, connections, said in outcomes:
        print(f"{row.what:<36}{stopped:>11}{connections:>6}  {said[:90]}")
    wrong = [
        (row.what, row.url, stopped, connections)
        for row, stopped, connections, _ in outcomes
        if stopped != row.stopped or (connections > 0) != (row.stopped == "reached")
    ]
    assert wrong == []

"""The API does what its OpenAPI schema says: schemathesis (every phase it runs on its own, every
check: `st run --checks all`) against /api/schema/, in process against the WSGI application, with
an API key holding every scope on a workspace whose OpenAI credential points at a local fake, so
requests reach the real code behind each operation.

Passes: no 5xx, and no check failed (status codes, content types, response schemas and headers,
bad input refused, good input accepted, auth not ignored, unsupported methods refused, ...).

Examples are bounded (SCHEMATHESIS_EXAMPLES, default 8 per operation and phase) and derandomized, so
the default suite spends about 40 s here; `scripts/schemathesis` runs more and prints the
figures. Jobs that operations queue are purged from the broker afterwards, and every row goes with
the test database's flush.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events
from schemathesis.transport.wsgi import WSGITransport

from providers import services as provider_services
from providers import validation
from tenants import services
from tenants.models import ApiKeyScope
from tests.fakes.openai_server import OpenAIFake

FAKE_KEY = "sk-fake-openai-key-schemathesis"
DYNAMIC_BODIES = (
    r"^/api/v1/(invocations|default-models"
    r"|model-providers/\{provider\}/(credentials.*|discover|models(/import)?"
    r"|models/\{model_id\}(/load-balancing.*)?))$"
)
# schemathesis's own default for positive_data_acceptance.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


@dataclass
class Figures:
    """What a run did, as `scripts/schemathesis` prints it."""

    operations: set[str] = field(default_factory=set)
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def report(self) -> str:
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        lines = [
            f"operations tested: {len(self.operations)}",
            f"examples (requests): {self.examples}",
            f"responses by status: {by_status}",
            f"5xx responses: {self.server_errors}",
            f"check failures (schema violations and others): {len(self.failures)}",
            f"errors: {len(self.errors)}",
        ]
        return "\n".join(lines + [f"  FAIL {f}" for f in sorted(self.failures)] + self.errors)


def run_schemathesis(api_key: str, *, examples: int, seed: int) -> Figures:
    """Run schemathesis's engine over the whole schema, as `st run --checks all` does."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "headers": {"Authorization": f"Bearer {api_key}"},
            "workers": 1,
            "cache": {"enabled": False},  # no .schemathesis/ left in the tree
            "generation": {
                "max-examples": examples,
                "deterministic": True,
                "database": "none",
                # The API refuses a NUL anywhere in a query string or a text (400: PostgreSQL can
                # store none), as the schema cannot say of every string.
                "allow-x00": False,
            },
            "operations": [
                {
                    # Bodies checked beyond what a schema can say, with field errors (400): a
                    # provider's credential form (its fields depend on {provider}), an
                    # invocation's input (its shape depends on model_type, its parameters on the
                    # model), provider and model given together or not at all.
                    "include-path-regex": DYNAMIC_BODIES,
                    "include-method": ["POST", "PUT", "PATCH"],
                    "checks": {
                        "positive_data_acceptance": {
                            # 405: a model named "import" is the import route's path,
                            # which takes POST only (a known wart: URL design, not data).
                            "expected-statuses": [*POSITIVE_STATUSES, "400", "405"]
                        }
                    },
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=config)
    figures = Figures()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                figures.examples += 1
                if interaction.response is not None:
                    figures.statuses[interaction.response.status_code] += 1
            if recorder.interactions:
                figures.operations.add(recorder.label)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        figures.failures.add(
                            f"{recorder.label}: {check.name}: {failure.title}"
                            f" [{_status(recorder, case_id)}] {failure.message[:300]}"
                            f" {_body(recorder, case_id)}"
                        )
        elif isinstance(event, events.NonFatalError):
            figures.errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            figures.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            figures.failures.update(f"{f.operation}: {f.title}" for f in event.failures)
    return figures


def _status(recorder, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return "no response"
    request, status = interaction.request, interaction.response.status_code
    return f"{request.method} {request.uri} -> {status}"


def _body(recorder, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return ""
    return (
        f"request {interaction.request.body!r:.200} response {interaction.response.content!r:.300}"
    )


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[OpenAIFake]:
    with OpenAIFake(api_key=FAKE_KEY) as server:
        yield server


@pytest.fixture
def api_key(transactional_db: None, openai_fake: OpenAIFake, settings, tmp_path) -> Iterator[str]:
    """A key with every scope, on a workspace with a checked OpenAI credential (at the fake)."""
    from config.celery import app

    settings.MEDIA_ROOT = str(tmp_path)  # audio sent to speech2text lands here, not in DATA_DIR
    settings.API_KEY_FAILURES_PER_ADDRESS = 1_000_000  # schemathesis sends wrong keys on purpose
    tenant = services.tenant_create(name="Schemathesis")
    _, raw_key = services.api_key_create(
        tenant=tenant, name="schemathesis", scopes=list(ApiKeyScope.values)
    )
    credential = provider_services.credential_create(
        tenant=tenant,
        provider="openai",
        name="Default",
        values={"openai_api_key": FAKE_KEY, "openai_api_base": openai_fake.url},
        actor=None,
    )
    job = validation.validation_create(target=credential)
    validation.validation_run(job_id=job.pk)
    credential.refresh_from_db()
    assert credential.status == "valid", credential.last_error
    yield raw_key
    app.control.purge()  # no worker runs here: the jobs the operations queued go


@pytest.fixture
def _wsgi_probes(monkeypatch) -> None:
    """schemathesis 4.32.5 hands the probes of its `ignored_auth` check to the in-process WSGI
    client with the network session's keywords (max_redirects, ...), which werkzeug refuses:
    they mean nothing in process, so they are dropped there."""
    send = WSGITransport.send

    def without_network_keywords(self, case, *, session=None, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, session=session, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", without_network_keywords)


@pytest.mark.usefixtures("_wsgi_probes")
def test_the_api_does_what_its_schema_says(api_key: str) -> None:
    figures = run_schemathesis(
        api_key,
        examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8")),
        seed=int(os.environ.get("SCHEMATHESIS_SEED", "1")),
    )
    print(figures.report())  # scripts/schemathesis shows it
    assert len(figures.operations) >= 40, figures.report()
    assert figures.server_errors == 0, figures.report()
    assert figures.failures == set(), figures.report()
    assert figures.errors == [], figures.report()

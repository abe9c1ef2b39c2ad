"""Every fake refuses what its provider refuses, with the provider's status and words: a lenient
fake would let an adapter mistake pass its tests. Each family's `SPEC.refusals` lists requests the
real API rejects (wrong or missing auth, missing or ill-typed fields, unknown models and fields);
each is sent raw to the fake, signed in as the provider wants, and must be refused so."""

from __future__ import annotations

import json

import pytest
import urllib3

from providers import selectors
from tests.fakes.catalog import SPECS, configure
from tests.fakes.spec import Refusal

# Each family's first catalog provider: whose form configures the fake.
PROVIDERS = {}
for _manifest in selectors.catalog():
    PROVIDERS.setdefault(_manifest.runtime.family, _manifest.provider)

CASES = [
    pytest.param(family, refusal, id=f"{family}-{refusal.label}")
    for family, spec in sorted(SPECS.items())
    for refusal in spec.refusals
]
_http = urllib3.PoolManager()


def send(family: str, refusal: Refusal) -> tuple[int, str]:
    pair = configure(PROVIDERS[family], refusal.model_type)
    with pair.serve() as fake:
        if pair.spec.refuse is not None:
            return pair.spec.refuse(fake, pair.endpoint.credentials, pair.model, refusal)
        url = fake.url + refusal.path.format(model=pair.model)
        body = refusal.body
        if not isinstance(body, bytes):  # "{model}" stands for the model in the JSON too
            body = b"" if body is None else json.dumps(body).replace("{model}", pair.model).encode()
        headers = {"Content-Type": "application/json"} if body else {}
        headers = pair.spec.sign_in(pair.endpoint.credentials, refusal.method, url, body, headers)
        for name, value in refusal.headers.items():
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            if value is not None:
                headers[name] = value
        answer = _http.request(refusal.method, url, body=body or None, headers=headers)
        return answer.status, answer.data.decode("utf-8", "replace")


@pytest.mark.parametrize(("family", "refusal"), CASES)
def test_the_fake_refuses_as_the_provider_does(family: str, refusal: Refusal) -> None:
    status, text = send(family, refusal)
    assert status == refusal.status, text
    assert refusal.says in text


def test_every_fake_lists_what_its_provider_refuses() -> None:
    assert not [family for family, spec in SPECS.items() if len(spec.refusals) < 5]

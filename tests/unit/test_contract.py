"""One contract for every family, run against its fake through the real adapter: the first catalog
provider of each family, called as its first model type (an LLM where it has one), configured from
its own form. Each failure the fakes can play (tests/fakes/base.py) must come out as the same typed
error whatever the family: the caller (routing, cool-downs, fallbacks) relies on it.

    401 / refused credentials     UpstreamAuth, not retried
    429 (Retry-After: 0.3)        retried (after the pause, where the provider names one)
    5xx, every time               retried, then UpstreamUnavailable
    no answer in time             UpstreamTimeout
    a stream cut midway           an UpstreamError (LLMs)

Before each failure the pair is called once successfully, so a family that exchanges its
credentials for a token, or reads a model's schema first, holds them and the failure meets the
call itself."""

from __future__ import annotations

import time

import pytest

from config import errors
from providers import selectors
from providers.runtime.base import ChatRequest, Message
from providers.runtime.http import RetryPolicy, Timeouts
from tests.fakes.catalog import SPECS, Pair, configure, invoke


def _first_pairs() -> list[Pair]:
    pairs: dict[str, Pair] = {}
    for manifest in selectors.catalog():
        family = manifest.runtime.family
        if family in pairs or family not in SPECS:
            continue
        types = manifest.supported_model_types
        pairs[family] = configure(manifest.provider, "llm" if "llm" in types else types[0])
    return sorted(pairs.values(), key=lambda p: p.manifest.runtime.family)


PAIRS = [pytest.param(p, id=p.manifest.runtime.family) for p in _first_pairs()]
QUICK = RetryPolicy(attempts=3, backoff=0.01)
ASK = ChatRequest(messages=(Message("user", "contract"),), parameters={"max_tokens": 16})


def _call(adapter, pair: Pair) -> None:
    invoke(adapter, pair, "contract")


def _warm(pair: Pair, fake, **kwargs):
    adapter = pair.adapter(fake, retry=kwargs.pop("retry", QUICK), **kwargs)
    _call(adapter, pair)
    fake.received.clear()
    return adapter


def test_every_family_is_under_contract() -> None:
    assert {p.values[0].manifest.runtime.family for p in PAIRS} == set(SPECS)


@pytest.mark.parametrize("pair", PAIRS)
def test_refused_credentials_are_an_auth_error_and_not_retried(pair: Pair) -> None:
    with pair.serve() as fake:
        adapter = _warm(pair, fake)
        fake.fail("401", times=5)
        with pytest.raises(errors.UpstreamAuth):
            _call(adapter, pair)
        # Not retried; a family holding an exchanged token may sign in afresh once.
        assert len(fake.received) <= 2
        fake.reset()


@pytest.mark.parametrize("pair", PAIRS)
def test_a_rate_limit_is_waited_out_and_retried(pair: Pair) -> None:
    with pair.serve() as fake:
        adapter = _warm(pair, fake, retry=RetryPolicy(attempts=3, backoff=0.01))
        fake.fail("429", times=1, retry_after=0.3)
        started = time.monotonic()
        _call(adapter, pair)
        assert len(fake.received) >= 2
        if any("Retry-After" in headers for _, headers in fake.answered):
            assert time.monotonic() - started >= 0.3, "the pause the backend asked for was skipped"


@pytest.mark.parametrize("pair", PAIRS)
def test_a_failing_server_is_retried_then_unavailable(pair: Pair) -> None:
    with pair.serve() as fake:
        adapter = _warm(pair, fake)
        fake.fail("500", times=10)
        with pytest.raises(errors.UpstreamUnavailable):
            _call(adapter, pair)
        assert len(fake.received) == QUICK.attempts
        fake.reset()


@pytest.mark.parametrize("pair", PAIRS)
def test_no_answer_in_time_is_a_timeout(pair: Pair) -> None:
    with pair.serve() as fake:
        adapter = _warm(
            pair, fake, timeouts=Timeouts(connect=2, read=0.3), retry=RetryPolicy(attempts=1)
        )
        fake.fail("slow", times=1, seconds=1.0)
        with pytest.raises(errors.UpstreamTimeout):
            _call(adapter, pair)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p.values[0].model_type == "llm"])
def test_a_stream_cut_midway_is_an_error(pair: Pair) -> None:
    with pair.serve() as fake:
        adapter = _warm(pair, fake)
        # On every reply: a family that asks something before it streams (Replicate reads the
        # model's schema and creates a prediction) meets the cut on the stream itself.
        fake.fail("drop_stream", times=5)
        with pytest.raises(errors.UpstreamError):
            list(adapter.stream(pair.model, ASK))
        fake.reset()

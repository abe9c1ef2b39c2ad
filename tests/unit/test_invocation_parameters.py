"""An invocation's parameters against its model's rules (issue 14 item 4: a `model` among them
reached the backend in place of the model that was checked and priced)."""

from __future__ import annotations

import pytest

from config import errors
from invocations import parameters
from providers import selectors
from providers.runtime.base import RESERVED_PARAMETERS
from providers.schema import ParameterRule

GPT_4O_MINI = selectors.catalog().get("openai").predefined("llm", "gpt-4o-mini").parameter_rules
SPARK = selectors.catalog().get("spark").predefined("llm", "spark-4.0-ultra").parameter_rules


def refusal(given, rules=GPT_4O_MINI) -> dict[str, list[str]]:
    with pytest.raises(errors.InvalidInput) as caught:
        parameters.check(given, rules)
    return caught.value.fields


@pytest.mark.parametrize("name", sorted(RESERVED_PARAMETERS))
@pytest.mark.parametrize("rules", [GPT_4O_MINI, ()], ids=["catalog", "custom"])
def test_names_the_call_sets_itself_are_refused(name, rules) -> None:
    fields = refusal({name: "gpt-5", "temperature": 0.5}, rules)
    assert list(fields) == [f"input.parameters.{name}"]
    assert "set by the invocation itself" in fields[f"input.parameters.{name}"][0]


def test_each_unknown_name_is_a_field_error_naming_what_the_model_takes() -> None:
    fields = refusal({"model": "gpt-5", "top_k": 3, "logit_bias": {}, "max_tokens": 10})
    assert set(fields) == {
        "input.parameters.model",
        "input.parameters.top_k",
        "input.parameters.logit_bias",
    }
    assert "temperature, top_p" in fields["input.parameters.top_k"][0]


def test_a_rules_bounds_types_and_options_hold() -> None:
    assert refusal({"max_tokens": 16385}) == {
        "input.parameters.max_tokens": ["Give a number from 1 to 16384."]
    }
    assert "from 1 to 16384" in refusal({"max_tokens": 2.5})["input.parameters.max_tokens"][0]
    assert "from 0 to 2" in refusal({"temperature": 2.5})["input.parameters.temperature"][0]
    assert "from 0 to 2" in refusal({"temperature": "hot"})["input.parameters.temperature"][0]
    assert "from 0 to 1" in refusal({"top_p": True})["input.parameters.top_p"][0]
    assert "from 0 to 1" in refusal({"temperature": 1.5}, SPARK)["input.parameters.temperature"][0]
    assert refusal({"show_ref_label": "yes"}, SPARK) == {
        "input.parameters.show_ref_label": ["Give true or false."]
    }
    effort = (ParameterRule("reasoning_effort", type="string", options=("low", "high")),)
    assert refusal({"reasoning_effort": "max"}, effort) == {
        "input.parameters.reasoning_effort": ["Give one of: low, high."]
    }
    parameters.check({"reasoning_effort": "low"}, effort)
    parameters.check({"top_k": 6, "temperature": 1, "show_ref_label": True}, SPARK)
    parameters.check(
        {"temperature": 0, "max_tokens": 16384, "response_format": "JSON", "top_p": None},
        GPT_4O_MINI,
    )


def test_a_custom_model_takes_the_common_sampling_settings() -> None:
    common = {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 256,
        "presence_penalty": -1,
        "frequency_penalty": 1.5,
        "seed": 7,
        "stop": ["\n\n"],
        "response_format": {"type": "json_object"},
    }
    parameters.check(common, ())
    parameters.check({"stop": "END"}, ())
    assert set(refusal({"logit_bias": {}, "stop": ["a"] * 5, "seed": 1.5}, ())) == {
        "input.parameters.logit_bias",
        "input.parameters.stop",
        "input.parameters.seed",
    }


def test_the_gateway_passes_on_only_the_settings_it_names() -> None:
    """/v1/chat/completions has no `parameters` to smuggle through: a body field it does not
    name is refused, and what reaches ChatRequest.parameters is a fixed set of sampling keys."""
    from invocations import openai_wire

    chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for extra in ({"parameters": {"model": "gpt-5"}}, {"top_k": 3}, {"functions": []}):
        with pytest.raises(errors.InvalidInput) as caught:
            openai_wire.ChatCall({**chat, **extra})
        assert list(caught.value.fields) == list(extra)
    call = openai_wire.ChatCall({**chat, "temperature": 0.5, "seed": 1, "max_tokens": 9})
    assert dict(call.for_family(True).parameters) == {
        "temperature": 0.5,
        "max_tokens": 9,
        "seed": 1,
    }
    assert not RESERVED_PARAMETERS & set(call.for_family(True).parameters)

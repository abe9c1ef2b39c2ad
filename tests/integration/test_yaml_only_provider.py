"""A new OpenAI-compatible provider added as one YAML file (PROVIDER_CATALOG_EXTRA_DIRS) is listed,
configurable and usable through the API, with no code."""

from __future__ import annotations

import textwrap

import pytest
from django.conf import settings

from providers.catalog import BUILTIN_DIR
from tests.unit.test_catalog import NEW_PROVIDER

pytestmark = pytest.mark.django_db


def test_a_yaml_only_provider_works_through_the_api(tmp_path, key_client) -> None:
    (tmp_path / "acme_llm.yaml").write_text(textwrap.dedent(NEW_PROVIDER), encoding="utf-8")
    client = key_client()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PROVIDER_CATALOG_DIRS", [BUILTIN_DIR, tmp_path])
        listed = {p["provider"]: p for p in client.get("/api/v1/model-providers").json()}
        assert len(listed) == 46
        acme = listed["acme_llm"]
        assert acme["label"] == {"en_US": "Acme LLM", "zh_Hans": "Acme 大模型"}
        assert acme["provider_credential_schema"][0]["variable"] == "api_key"

        created = client.post(
            "/api/v1/model-providers/acme_llm/credentials",
            {"credentials": {"api_key": "acme-key-0000000000"}},
            format="json",
        )
        assert created.status_code == 201
        models = client.get("/api/v1/models?model_type=llm").json()
        assert ("acme_llm", "acme-1") in {(m["provider"], m["model"]) for m in models}
    assert "acme_llm" not in {p["provider"] for p in client.get("/api/v1/model-providers").json()}

"""manage.py check_provider validates synchronously and prints what the backend said."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from providers import services
from providers.models import CheckStatus, CustomModel
from tests.fakes.xinference_server import XinferenceFake

pytestmark = pytest.mark.django_db


def test_check_provider_prints_each_verdict_and_records_it(tenant, capsys) -> None:
    with XinferenceFake(api_key=None) as fake:
        for model, model_type, uid in [
            ("qwen", "llm", "qwen2.5-instruct"),
            ("typo", "llm", "qwen2.5-instrukt"),
        ]:
            services.custom_model_create(
                tenant=tenant,
                provider="xinference",
                model=model,
                model_type=model_type,
                values={"server_url": fake.url, "model_uid": uid},
                actor=None,
            )
        with pytest.raises(CommandError, match="1 of 2 check"):
            call_command("check_provider", tenant.slug, "xinference")
    out = capsys.readouterr().out
    assert "llm model 'qwen' with qwen: valid" in out
    assert "context_length=32768" in out
    assert "llm model 'typo' with typo: INVALID [not_found]" in out
    assert "uid: qwen2.5-instrukt" in out
    statuses = dict(CustomModel.objects.values_list("model", "status"))
    assert statuses == {"qwen": CheckStatus.VALID, "typo": CheckStatus.INVALID}


def test_check_provider_refuses_clearly(tenant) -> None:
    with pytest.raises(CommandError, match="No workspace"):
        call_command("check_provider", "nope", "openai")
    with pytest.raises(CommandError, match="No provider"):
        call_command("check_provider", tenant.slug, "nope")
    with pytest.raises(CommandError, match="not configured"):
        call_command("check_provider", tenant.slug, "openai")

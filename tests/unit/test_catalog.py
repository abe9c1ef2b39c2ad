"""The provider catalog: every manifest valid, the 45 providers of Dify's table with exactly their
model types, and a provider added by YAML alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from providers import catalog
from providers.schema import ManifestError

STATIC = Path(__file__).resolve().parents[2] / "static"

# Dify's "supported providers" table: key -> (model types, features that must be offered).
EXPECTED = {
    "openai": ({"llm", "text-embedding", "speech2text", "tts"}, {"tool-call", "vision"}),
    "anthropic": ({"llm"}, {"tool-call"}),
    "azure_openai": ({"llm", "text-embedding", "speech2text", "tts"}, {"tool-call", "vision"}),
    "google": ({"llm"}, set()),
    "vertex_ai": ({"llm", "text-embedding"}, {"vision"}),
    "nvidia": ({"llm", "text-embedding", "rerank"}, set()),
    "nvidia_nim": ({"llm"}, set()),
    "triton_inference_server": ({"llm"}, set()),
    "bedrock": ({"llm", "text-embedding"}, set()),
    "openrouter": ({"llm"}, set()),
    "cohere": ({"llm", "text-embedding", "rerank"}, set()),
    "togetherai": ({"llm"}, set()),
    "ollama": ({"llm", "text-embedding"}, set()),
    "mistralai": ({"llm"}, set()),
    "groq": ({"llm"}, set()),
    "replicate": ({"llm", "text-embedding"}, set()),
    "huggingface_hub": ({"llm", "text-embedding"}, set()),
    "xinference": (
        {"llm", "text-embedding", "rerank", "speech2text", "tts"},
        {"tool-call", "vision"},
    ),
    "zhipuai": ({"llm", "text-embedding"}, {"tool-call", "vision"}),
    "baichuan": ({"llm", "text-embedding"}, set()),
    "spark": ({"llm"}, set()),
    "minimax": ({"llm", "text-embedding"}, {"tool-call"}),
    "tongyi": ({"llm", "text-embedding", "tts"}, set()),
    "wenxin": ({"llm", "text-embedding"}, set()),
    "moonshot": ({"llm"}, {"tool-call"}),
    "tencent": ({"speech2text"}, set()),
    "stepfun": ({"llm"}, {"tool-call", "vision"}),
    "volcengine_maas": ({"llm", "text-embedding"}, set()),
    "yi": ({"llm"}, set()),
    "zhinao": ({"llm"}, set()),
    "azure_ai_studio": ({"llm", "rerank"}, set()),
    "deepseek": ({"llm"}, {"tool-call"}),
    "hunyuan": ({"llm"}, set()),
    "siliconflow": ({"llm", "text-embedding"}, set()),
    "jina": ({"text-embedding", "rerank"}, set()),
    "chatglm": ({"llm"}, set()),
    "openllm": ({"llm", "text-embedding"}, set()),
    "localai": ({"llm", "text-embedding", "rerank", "speech2text"}, set()),
    "openai_api_compatible": ({"llm", "text-embedding", "speech2text"}, set()),
    "perfxcloud": ({"llm", "text-embedding"}, set()),
    "leptonai": ({"llm"}, set()),
    "novita": ({"llm"}, set()),
    "sagemaker": ({"llm", "text-embedding", "rerank"}, set()),
    "huggingface_tei": ({"text-embedding", "rerank"}, set()),
    "gpustack": (
        {"llm", "text-embedding", "rerank", "speech2text", "tts"},
        {"tool-call", "vision"},
    ),
}


@pytest.fixture(scope="module")
def builtin() -> catalog.Catalog:
    return catalog.load((str(catalog.BUILTIN_DIR),))


def test_every_builtin_manifest_loads_and_is_valid(builtin: catalog.Catalog) -> None:
    for path in sorted(catalog.BUILTIN_DIR.glob("*.yaml")):
        catalog.parse_file(path)  # raises ManifestError listing every problem
    assert len(builtin) == len(list(catalog.BUILTIN_DIR.glob("*.yaml")))


def test_the_45_providers_of_difys_table_with_exactly_their_model_types(builtin) -> None:
    assert len(EXPECTED) == 45
    assert set(builtin.keys()) == set(EXPECTED)
    for key, (model_types, features) in EXPECTED.items():
        manifest = builtin.get(key)
        assert set(manifest.supported_model_types) == model_types, key
        assert features <= set(manifest.features), key


def test_each_manifest_can_be_configured(builtin) -> None:
    for manifest in builtin:
        if manifest.has_predefined_models:
            assert manifest.provider_credential_schema, manifest.provider
            offered = {m.model_type for m in manifest.models}
            assert offered <= set(manifest.supported_model_types), manifest.provider
        if manifest.is_customizable:
            assert manifest.model_credential_schema is not None, manifest.provider
        else:
            # Only predefined models: every type it offers must have one.
            assert {m.model_type for m in manifest.models} == set(manifest.supported_model_types), (
                manifest.provider
            )


def test_every_icon_exists_as_an_svg(builtin) -> None:
    for manifest in builtin:
        icon = STATIC / manifest.icon
        assert icon.is_file(), icon
        assert icon.read_text().lstrip().startswith("<svg"), icon


def test_url_fields_are_checked_as_urls(builtin) -> None:
    for manifest in builtin:
        fields = list(manifest.provider_credential_schema)
        if manifest.model_credential_schema:
            fields += manifest.model_credential_schema.fields
        for form_field in fields:
            name = form_field.variable
            # sagemaker_endpoint and endpoint_id name things; these hold addresses.
            if form_field.type == "text-input" and (
                name.endswith(("_url", "_base")) or name in {"endpoint", "api_base"}
            ):
                assert form_field.format == "url", f"{manifest.provider}.{name}"


def test_predefined_llms_have_pricing_with_a_currency(builtin) -> None:
    priced = [m for manifest in builtin for m in manifest.models if m.pricing]
    assert len(priced) > 40
    assert {p.pricing.currency for p in priced} <= {"USD", "CNY"}


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


NEW_PROVIDER = """
    provider: acme_llm
    label: {en_US: Acme LLM, zh_Hans: Acme 大模型}
    description: {en_US: An OpenAI-compatible cloud., zh_Hans: 一个兼容 OpenAI 的云服务。}
    icon: providers/icons/openai_api_compatible.svg
    help: {title: {en_US: Get a key, zh_Hans: 获取密钥}, url: "https://acme.example/keys"}
    supported_model_types: [llm]
    configurate_methods: [predefined-model]
    features: [tool-call]
    runtime:
      family: openai_compat
      base_url: https://api.acme.example/v1
      credentials: {api_key: api_key}
    provider_credential_schema:
      credential_form_schemas:
        - variable: api_key
          label: {en_US: API Key, zh_Hans: API 密钥}
          type: secret-input
          required: true
    models:
      - model: acme-1
        label: {en_US: Acme 1, zh_Hans: Acme 1}
        model_type: llm
        features: [tool-call]
        context_size: 32768
        pricing: {input: "0.50", output: "1.50", currency: USD}
"""


def test_a_yaml_only_openai_compatible_provider_joins_the_catalog(tmp_path) -> None:
    _write(tmp_path, "acme_llm", NEW_PROVIDER)
    loaded = catalog.load((str(catalog.BUILTIN_DIR), str(tmp_path)))
    manifest = loaded.get("acme_llm")
    assert manifest is not None
    assert manifest.runtime.family == "openai_compat"
    assert manifest.models[0].pricing.output == pytest.approx(1.5)
    assert len(loaded) == 46


def test_an_extra_directory_cannot_redefine_a_builtin_provider(tmp_path) -> None:
    _write(tmp_path, "openai", NEW_PROVIDER.replace("acme_llm", "openai"))
    with pytest.raises(ManifestError, match="defined twice"):
        catalog.load((str(catalog.BUILTIN_DIR), str(tmp_path)))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("  zh_Hans: Acme 大模型}", "}"), "label: must be a mapping|zh_Hans: is required"),
        (("configurate_methods: [predefined-model]", "configurate_methods: [magic]"), "magic"),
        (("family: openai_compat", "family: carrier_pigeon"), "runtime.family"),
        (("credentials: {api_key: api_key}", "credentials: {api_key: token}"), "no form field"),
        (("context_size: 32768", "context_size: -1"), "positive integer"),
        (("type: secret-input", "type: password"), "type"),
        (("supported_model_types: [llm]", "supported_model_types: [rerank]"), "not a supported"),
        (("features: [tool-call]\nruntime", "features: []\nruntime"), "provider's features"),
        (("currency: USD}", "currency: dollars}"), "ISO 4217"),
        (("icon: providers", "colour: red\nicon: providers"), "unknown key"),
        (("required: true", "required: true\n      min: 1"), "only an integer or seconds"),
    ],
)
def test_broken_manifests_are_refused_with_the_path_of_the_problem(
    tmp_path, change, problem
) -> None:
    old, new = change
    text = textwrap.dedent(NEW_PROVIDER)
    assert old.strip() in text
    path = _write(tmp_path, "acme_llm", text.replace(old.strip(), new.strip(), 1))
    with pytest.raises(ManifestError, match=problem):
        catalog.parse_file(path)


def test_a_file_name_must_match_its_provider(tmp_path) -> None:
    path = _write(tmp_path, "other_name", NEW_PROVIDER)
    with pytest.raises(ManifestError, match="must match the file name"):
        catalog.parse_file(path)

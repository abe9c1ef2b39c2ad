"""The provider manifest schema: frozen dataclasses and a strict parser. Pure Python (no Django).

A manifest (providers/catalog/<key>.yaml) follows Dify's field names so a Dify user recognises it:
`provider`, `label`, `supported_model_types`, `configurate_methods`, `provider_credential_schema`,
`model_credential_schema`, `models`; plus our `runtime` (protocol family + default base URL) and
`features`. `parse_manifest` raises `ManifestError` naming the file and the path of each problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MODEL_TYPES = ("llm", "text-embedding", "rerank", "speech2text", "tts", "moderation")
CONFIGURATION_METHODS = ("predefined-model", "customizable-model")
FIELD_TYPES = ("text-input", "secret-input", "select", "radio", "switch")
FEATURES = (
    "tool-call",
    "multi-tool-call",
    "stream-tool-call",
    "agent-thought",
    "vision",
    "document",
    "video",
    "audio",
    "structured-output",
    "stream",
)
FAMILIES = (
    "openai_compat",
    "azure_openai",
    "azure_ai_studio",
    "anthropic",
    "google_gemini",
    "vertex_ai",
    "bedrock",
    "sagemaker",
    "cohere",
    "ollama",
    "huggingface_hub",
    "tei",
    "xinference",
    "triton",
    "openllm",
    "replicate",
    "tongyi",
    "wenxin",
    "zhipuai",
    "minimax",
    "hunyuan",
    "tencent_asr",
    "spark",
    "volcengine",
    "jina",
    "nvidia",
)
# "seconds": a whole number of seconds, at least 1 and at most the service's UPSTREAM_TIMEOUT_MAX.
FIELD_FORMATS = ("url", "integer", "seconds")
NUMERIC_FORMATS = ("integer", "seconds")
PARAMETER_TYPES = ("float", "int", "string", "boolean", "text")
PARAMETER_TEMPLATES = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "json_schema",
)
PRICING_UNITS = ("1M-tokens", "1M-characters", "minute")
MODEL_TYPE_VARIABLE = "__model_type"  # show_on pseudo-variable: the model type being configured
DEFAULT_MAX_LENGTH = 4096
_VARIABLE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class ManifestError(ValueError):
    """A manifest does not follow the schema; the message names the file and path."""


@dataclass(frozen=True, slots=True)
class I18n:
    en_US: str
    zh_Hans: str

    def get(self, language: str) -> str:
        return self.zh_Hans if language.lower().startswith("zh") else self.en_US


@dataclass(frozen=True, slots=True)
class ShowOn:
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: I18n
    show_on: tuple[ShowOn, ...] = ()


@dataclass(frozen=True, slots=True)
class FormField:
    variable: str
    label: I18n
    type: str
    required: bool = False
    default: str | bool | None = None
    options: tuple[Option, ...] = ()
    placeholder: I18n | None = None
    help: I18n | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    show_on: tuple[ShowOn, ...] = ()
    format: str | None = None  # "url", "integer" (whole number digits) or "seconds"
    min: int | None = None  # bounds of an integer field, inclusive
    max: int | None = None

    @property
    def is_secret(self) -> bool:
        return self.type == "secret-input"

    def option_values(self) -> tuple[str, ...]:
        return tuple(option.value for option in self.options)


@dataclass(frozen=True, slots=True)
class ModelCredentialSchema:
    model_label: I18n
    model_placeholder: I18n | None
    fields: tuple[FormField, ...]


@dataclass(frozen=True, slots=True)
class ParameterRule:
    name: str
    use_template: str | None = None
    label: I18n | None = None
    type: str | None = None
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pricing:
    input: Decimal
    output: Decimal | None
    currency: str
    unit: str = "1M-tokens"


@dataclass(frozen=True, slots=True)
class PredefinedModel:
    model: str
    label: I18n
    model_type: str
    features: tuple[str, ...] = ()
    context_size: int | None = None
    mode: str | None = None  # llm: chat | completion
    parameter_rules: tuple[ParameterRule, ...] = ()
    pricing: Pricing | None = None
    deprecated: bool = False


@dataclass(frozen=True, slots=True)
class Runtime:
    family: str
    base_url: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)  # adapter arg -> form variable
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # family-specific settings
    # The official client package that talked to this family's fake in a test.
    checked_by: str | None = None


@dataclass(frozen=True, slots=True)
class Help:
    title: I18n
    url: str


@dataclass(frozen=True, slots=True)
class ProviderManifest:
    provider: str
    label: I18n
    description: I18n
    icon: str
    help: Help
    supported_model_types: tuple[str, ...]
    configurate_methods: tuple[str, ...]
    features: tuple[str, ...]
    runtime: Runtime
    provider_credential_schema: tuple[FormField, ...] = ()
    model_credential_schema: ModelCredentialSchema | None = None
    models: tuple[PredefinedModel, ...] = ()

    @property
    def is_customizable(self) -> bool:
        return "customizable-model" in self.configurate_methods

    @property
    def has_predefined_models(self) -> bool:
        return "predefined-model" in self.configurate_methods

    @property
    def secret_variables(self) -> frozenset[str]:
        """The form variables that hold secrets: its secret-input fields."""
        fields = self.provider_credential_schema + (
            self.model_credential_schema.fields if self.model_credential_schema else ()
        )
        return frozenset(f.variable for f in fields if f.is_secret)

    def predefined(self, model_type: str, model: str) -> PredefinedModel | None:
        for candidate in self.models:
            if candidate.model == model and candidate.model_type == model_type:
                return candidate
        return None


# --- Parsing ----------------------------------------------------------------------------------


class _Reader:
    """Reads one manifest, collecting every problem with its path before raising."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return {}
        for key in sorted(set(value) - allowed):
            self.fail(f"{path}.{key}", "unknown key")
        for key in sorted(required - set(value)):
            self.fail(f"{path}.{key}", "is required")
        return value

    def text(self, value: Any, path: str, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            self.fail(path, "must be a non-empty string")
            return ""
        return value

    def i18n(self, value: Any, path: str) -> I18n:
        if isinstance(value, str):
            self.fail(path, "needs both en_US and zh_Hans")
            return I18n(value, value)
        data = self.mapping(value, path, {"en_US", "zh_Hans"}, {"en_US", "zh_Hans"})
        return I18n(
            self.text(data.get("en_US", ""), f"{path}.en_US"),
            self.text(data.get("zh_Hans", ""), f"{path}.zh_Hans"),
        )

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(path, f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    def choices(self, value: Any, path: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return ()
        result = tuple(self.choice(item, f"{path}[{i}]", choices) for i, item in enumerate(value))
        if len(set(result)) != len(result):
            self.fail(path, "has duplicates")
        return result

    def url(self, value: Any, path: str) -> str:
        text = self.text(value, path)
        if text and not re.match(r"^https?://[^\s/]+", text):
            self.fail(path, "must be an http(s) URL")
        return text

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, "must be a number")
            return None
        return value

    def decimal(self, value: Any, path: str) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(path, "must be a decimal amount")
            return Decimal(0)
        if amount < 0:
            self.fail(path, "must not be negative")
        return amount

    def show_on(self, value: Any, path: str) -> tuple[ShowOn, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return ()
        result = []
        for i, item in enumerate(value):
            data = self.mapping(item, f"{path}[{i}]", {"variable", "value"}, {"variable", "value"})
            result.append(
                ShowOn(
                    self.text(data.get("variable", ""), f"{path}[{i}].variable"),
                    str(data.get("value", "")),
                )
            )
        return tuple(result)

    def form_field(self, value: Any, path: str) -> FormField:
        data = self.mapping(
            value,
            path,
            {
                "variable",
                "label",
                "type",
                "required",
                "default",
                "options",
                "placeholder",
                "help",
                "max_length",
                "show_on",
                "format",
                "min",
                "max",
            },
            {"variable", "label", "type"},
        )
        variable = self.text(data.get("variable", ""), f"{path}.variable")
        if variable and not _VARIABLE.match(variable):
            self.fail(f"{path}.variable", "must be lower_snake_case")
        field_type = self.choice(data.get("type"), f"{path}.type", FIELD_TYPES)
        options = []
        for i, item in enumerate(data.get("options") or []):
            opath = f"{path}.options[{i}]"
            odata = self.mapping(item, opath, {"value", "label", "show_on"}, {"value", "label"})
            options.append(
                Option(
                    str(odata.get("value", "")),
                    self.i18n(odata.get("label"), f"{opath}.label"),
                    self.show_on(odata.get("show_on"), f"{opath}.show_on"),
                )
            )
        if field_type in {"select", "radio"} and not options:
            self.fail(f"{path}.options", f"a {field_type} needs options")
        if field_type not in {"select", "radio"} and options:
            self.fail(f"{path}.options", f"a {field_type} has no options")
        default = data.get("default")
        if field_type == "switch":
            if default is not None and not isinstance(default, bool):
                self.fail(f"{path}.default", "a switch default is true or false")
        elif default is not None:
            default = str(default)
            values = [option.value for option in options]
            if options and default not in values:
                self.fail(f"{path}.default", f"{default!r} is not one of the options")
        max_length = data.get("max_length", DEFAULT_MAX_LENGTH)
        if not isinstance(max_length, int) or max_length <= 0:
            self.fail(f"{path}.max_length", "must be a positive integer")
            max_length = DEFAULT_MAX_LENGTH
        fmt = data.get("format")
        if fmt is not None:
            self.choice(fmt, f"{path}.format", FIELD_FORMATS)
            if field_type != "text-input":
                self.fail(f"{path}.format", "only a text-input has a format")
        bounds = {name: data.get(name) for name in ("min", "max")}
        for name, bound in bounds.items():
            if bound is None:
                continue
            if fmt not in NUMERIC_FORMATS:
                self.fail(f"{path}.{name}", "only an integer or seconds field has bounds")
            if not isinstance(bound, int) or isinstance(bound, bool):
                self.fail(f"{path}.{name}", "must be a whole number")
                bounds[name] = None
        if (
            bounds["min"] is not None
            and bounds["max"] is not None
            and bounds["min"] > bounds["max"]
        ):
            self.fail(f"{path}.max", "must not be below min")
        return FormField(
            variable=variable,
            label=self.i18n(data.get("label"), f"{path}.label"),
            type=field_type,
            required=bool(data.get("required", False)),
            default=default,
            options=tuple(options),
            placeholder=self.i18n(data["placeholder"], f"{path}.placeholder")
            if "placeholder" in data
            else None,
            help=self.i18n(data["help"], f"{path}.help") if "help" in data else None,
            max_length=max_length,
            show_on=self.show_on(data.get("show_on"), f"{path}.show_on"),
            format=fmt,
            min=bounds["min"],
            max=bounds["max"],
        )

    def form(self, value: Any, path: str) -> tuple[FormField, ...]:
        if not isinstance(value, list):
            self.fail(path, "must be a list of fields")
            return ()
        fields = tuple(self.form_field(item, f"{path}[{i}]") for i, item in enumerate(value))
        self.check_form(fields, path)
        return fields

    def check_form(self, fields: tuple[FormField, ...], path: str) -> None:
        names = [f.variable for f in fields]
        for name in {n for n in names if names.count(n) > 1}:
            self.fail(path, f"variable {name!r} appears twice")
        for i, form_field in enumerate(fields):
            for condition in form_field.show_on:
                if condition.variable == MODEL_TYPE_VARIABLE:
                    self.choice(condition.value, f"{path}[{i}].show_on", MODEL_TYPES)
                elif condition.variable not in names:
                    self.fail(f"{path}[{i}].show_on", f"unknown variable {condition.variable!r}")

    def parameter_rule(self, value: Any, path: str) -> ParameterRule:
        data = self.mapping(
            value,
            path,
            {
                "name",
                "use_template",
                "label",
                "type",
                "required",
                "default",
                "min",
                "max",
                "precision",
                "options",
            },
            {"name"},
        )
        template = data.get("use_template")
        if template is not None:
            self.choice(template, f"{path}.use_template", PARAMETER_TEMPLATES)
        rule_type = data.get("type")
        if rule_type is not None:
            self.choice(rule_type, f"{path}.type", PARAMETER_TYPES)
        if template is None and rule_type is None:
            self.fail(path, "needs use_template or type")
        low = self.number(data.get("min"), f"{path}.min")
        high = self.number(data.get("max"), f"{path}.max")
        if low is not None and high is not None and low > high:
            self.fail(path, "min is above max")
        return ParameterRule(
            name=self.text(data.get("name", ""), f"{path}.name"),
            use_template=template,
            label=self.i18n(data["label"], f"{path}.label") if "label" in data else None,
            type=rule_type,
            required=bool(data.get("required", False)),
            default=data.get("default"),
            min=low,
            max=high,
            precision=data.get("precision"),
            options=tuple(str(o) for o in data.get("options") or ()),
        )

    def pricing(self, value: Any, path: str) -> Pricing:
        data = self.mapping(
            value, path, {"input", "output", "currency", "unit"}, {"input", "currency"}
        )
        currency = self.text(data.get("currency", ""), f"{path}.currency")
        if currency and not re.match(r"^[A-Z]{3}$", currency):
            self.fail(f"{path}.currency", "must be an ISO 4217 code such as USD or CNY")
        return Pricing(
            input=self.decimal(data.get("input"), f"{path}.input"),
            output=self.decimal(data["output"], f"{path}.output") if "output" in data else None,
            currency=currency,
            unit=self.choice(data.get("unit", "1M-tokens"), f"{path}.unit", PRICING_UNITS),
        )

    def model(self, value: Any, path: str, provider_features: tuple[str, ...]) -> PredefinedModel:
        data = self.mapping(
            value,
            path,
            {
                "model",
                "label",
                "model_type",
                "features",
                "context_size",
                "mode",
                "parameter_rules",
                "pricing",
                "deprecated",
            },
            {"model", "label", "model_type"},
        )
        name = self.text(data.get("model", ""), f"{path}.model")
        model_type = self.choice(data.get("model_type"), f"{path}.model_type", MODEL_TYPES)
        features = self.choices(data.get("features", []), f"{path}.features", FEATURES)
        for feature in set(features) - set(provider_features) - {"stream"}:
            self.fail(f"{path}.features", f"{feature!r} is not among the provider's features")
        context_size = data.get("context_size")
        if context_size is not None and (not isinstance(context_size, int) or context_size <= 0):
            self.fail(f"{path}.context_size", "must be a positive integer")
        if model_type == "llm" and context_size is None:
            self.fail(f"{path}.context_size", "an llm needs a context size")
        mode = data.get("mode")
        if model_type == "llm":
            mode = self.choice(mode or "chat", f"{path}.mode", ("chat", "completion"))
        rules = tuple(
            self.parameter_rule(item, f"{path}.parameter_rules[{i}]")
            for i, item in enumerate(data.get("parameter_rules") or [])
        )
        return PredefinedModel(
            model=name,
            label=self.i18n(data.get("label"), f"{path}.label"),
            model_type=model_type,
            features=features,
            context_size=context_size,
            mode=mode,
            parameter_rules=rules,
            pricing=self.pricing(data["pricing"], f"{path}.pricing") if "pricing" in data else None,
            deprecated=bool(data.get("deprecated", False)),
        )

    def runtime(self, value: Any, path: str) -> Runtime:
        data = self.mapping(
            value,
            path,
            {"family", "base_url", "credentials", "extra_headers", "options", "checked_by"},
            {"family"},
        )
        checked_by = data.get("checked_by")
        if checked_by is not None and not isinstance(checked_by, str):
            self.fail(f"{path}.checked_by", "must name a package")
            checked_by = None
        base_url = data.get("base_url")
        if base_url is not None:
            base_url = self.url(base_url, f"{path}.base_url")
        credentials = data.get("credentials") or {}
        if not isinstance(credentials, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in credentials.items()
        ):
            self.fail(f"{path}.credentials", "must map adapter arguments to form variables")
            credentials = {}
        return Runtime(
            family=self.choice(data.get("family"), f"{path}.family", FAMILIES),
            base_url=base_url,
            credentials=dict(credentials),
            extra_headers=dict(data.get("extra_headers") or {}),
            options=dict(data.get("options") or {}),
            checked_by=checked_by,
        )


_MANIFEST_KEYS = {
    "provider",
    "label",
    "description",
    "icon",
    "help",
    "supported_model_types",
    "configurate_methods",
    "features",
    "runtime",
    "provider_credential_schema",
    "model_credential_schema",
    "models",
}


def parse_manifest(data: Any, *, source: str) -> ProviderManifest:
    """Validate one manifest's parsed YAML and build it; `ManifestError` lists every problem."""
    r = _Reader(source)
    d = r.mapping(
        data,
        "manifest",
        _MANIFEST_KEYS,
        {
            "provider",
            "label",
            "description",
            "icon",
            "help",
            "supported_model_types",
            "configurate_methods",
            "runtime",
        },
    )
    key = r.text(d.get("provider", ""), "provider")
    if key and not _KEY.match(key):
        r.fail("provider", "must be lower_snake_case")
    model_types = r.choices(d.get("supported_model_types"), "supported_model_types", MODEL_TYPES)
    methods = r.choices(d.get("configurate_methods"), "configurate_methods", CONFIGURATION_METHODS)
    features = r.choices(d.get("features", []), "features", FEATURES)
    help_data = r.mapping(d.get("help"), "help", {"title", "url"}, {"title", "url"})
    provider_form: tuple[FormField, ...] = ()
    if "provider_credential_schema" in d:
        schema = r.mapping(
            d["provider_credential_schema"],
            "provider_credential_schema",
            {"credential_form_schemas"},
            {"credential_form_schemas"},
        )
        provider_form = r.form(
            schema.get("credential_form_schemas", []),
            "provider_credential_schema.credential_form_schemas",
        )
    model_schema = None
    if "model_credential_schema" in d:
        schema = r.mapping(
            d["model_credential_schema"],
            "model_credential_schema",
            {"model", "credential_form_schemas"},
            {"model", "credential_form_schemas"},
        )
        model_data = r.mapping(
            schema.get("model"),
            "model_credential_schema.model",
            {"label", "placeholder"},
            {"label"},
        )
        model_schema = ModelCredentialSchema(
            model_label=r.i18n(model_data.get("label"), "model_credential_schema.model.label"),
            model_placeholder=r.i18n(
                model_data["placeholder"], "model_credential_schema.model.placeholder"
            )
            if "placeholder" in model_data
            else None,
            fields=r.form(
                schema.get("credential_form_schemas", []),
                "model_credential_schema.credential_form_schemas",
            ),
        )
    models = tuple(
        r.model(item, f"models[{i}]", features) for i, item in enumerate(d.get("models") or [])
    )
    runtime = r.runtime(d.get("runtime"), "runtime")

    # Cross-checks: what the manifest promises, it must be able to deliver.
    if "predefined-model" in methods and not provider_form:
        r.fail("provider_credential_schema", "a predefined-model provider needs a credential form")
    if "predefined-model" in methods and not models:
        r.fail("models", "a predefined-model provider lists its models")
    if "customizable-model" in methods and model_schema is None:
        r.fail("model_credential_schema", "a customizable-model provider needs a model form")
    seen = set()
    for i, model in enumerate(models):
        if model.model_type not in model_types:
            r.fail(f"models[{i}].model_type", f"{model.model_type!r} is not a supported type")
        if (model.model_type, model.model) in seen:
            r.fail(f"models[{i}]", f"{model.model_type} model {model.model!r} appears twice")
        seen.add((model.model_type, model.model))
    variables = {f.variable for f in provider_form}
    if model_schema is not None:
        variables |= {f.variable for f in model_schema.fields}
    for argument, variable in runtime.credentials.items():
        if variable not in variables:
            r.fail(f"runtime.credentials.{argument}", f"no form field {variable!r}")
    for i, form_field in enumerate(provider_form):
        if any(c.variable == MODEL_TYPE_VARIABLE for c in form_field.show_on):
            r.fail(f"provider_credential_schema[{i}].show_on", "__model_type is for model forms")

    label = r.i18n(d.get("label"), "label")
    description = r.i18n(d.get("description"), "description")
    help_link = Help(
        title=r.i18n(help_data.get("title"), "help.title"),
        url=r.url(help_data.get("url"), "help.url"),
    )
    icon = r.text(d.get("icon", ""), "icon")
    if icon and not re.match(r"^providers/icons/[a-z0-9_]+\.svg$", icon):
        r.fail("icon", "must be providers/icons/<name>.svg")

    if r.problems:
        raise ManifestError(f"{source}:\n  " + "\n  ".join(r.problems))
    return ProviderManifest(
        provider=key,
        label=label,
        description=description,
        icon=icon,
        help=help_link,
        supported_model_types=model_types,
        configurate_methods=methods,
        features=features,
        runtime=runtime,
        provider_credential_schema=provider_form,
        model_credential_schema=model_schema,
        models=models,
    )

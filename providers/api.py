"""/api/v1/model-providers, /api/v1/models, /api/v1/default-models, /api/v1/audit-log.

Thin views: parse with an input serializer, call one service or selector, render an output
serializer. Reads need `settings.read`; writes need `settings.change` (owner, admin, `write` key).
Secrets leave only as their obfuscated hints.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config import errors, openapi, query
from config.serializers import Text
from providers import credentials, discovery, selectors, services, validation
from providers.models import CheckStatus, CustomModel, JobStatus, ModelType, ValidationJob
from providers.schema import FEATURES
from tenants.api import TenantApi
from tenants.principals import Perm

READ_WRITE = {
    "GET": Perm.READ_SETTINGS,
    "POST": Perm.CHANGE_SETTINGS,
    "PUT": Perm.CHANGE_SETTINGS,
    "PATCH": Perm.CHANGE_SETTINGS,
    "DELETE": Perm.CHANGE_SETTINGS,
}
MODEL_TYPES = [c for c, _ in ModelType.choices if c != "moderation"]


# --- Output serializers -----------------------------------------------------------------------


class I18nOutput(serializers.Serializer):
    en_US = serializers.CharField()
    zh_Hans = serializers.CharField()


class ShowOnOutput(serializers.Serializer):
    variable = serializers.CharField()
    value = serializers.CharField()


class OptionOutput(serializers.Serializer):
    value = serializers.CharField()
    label = I18nOutput()
    show_on = ShowOnOutput(many=True)


class FormFieldOutput(serializers.Serializer):
    variable = serializers.CharField()
    label = I18nOutput()
    type = serializers.CharField()
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True)
    options = OptionOutput(many=True)
    placeholder = I18nOutput(allow_null=True)
    help = I18nOutput(allow_null=True)
    max_length = serializers.IntegerField()
    show_on = ShowOnOutput(many=True)
    format = serializers.CharField(allow_null=True)


class ModelFormOutput(serializers.Serializer):
    model_label = I18nOutput()
    model_placeholder = I18nOutput(allow_null=True)
    fields = FormFieldOutput(many=True)


class PricingOutput(serializers.Serializer):
    input = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=True)
    output = serializers.DecimalField(
        max_digits=12, decimal_places=6, coerce_to_string=True, allow_null=True
    )
    currency = serializers.CharField()
    unit = serializers.CharField(help_text="Price per: 1M-tokens, 1M-characters or minute.")


class QuotaOutput(serializers.Serializer):
    quota_type = serializers.CharField()
    limit = serializers.IntegerField()
    used = serializers.IntegerField()


class ProviderOutput(serializers.Serializer):
    provider = serializers.CharField(source="manifest.provider")
    label = I18nOutput(source="manifest.label")
    description = I18nOutput(source="manifest.description")
    icon_url = serializers.SerializerMethodField()
    help = serializers.SerializerMethodField()
    supported_model_types = serializers.ListField(
        child=serializers.CharField(), source="manifest.supported_model_types"
    )
    configurate_methods = serializers.ListField(
        child=serializers.CharField(), source="manifest.configurate_methods"
    )
    features = serializers.ListField(child=serializers.CharField(), source="manifest.features")
    provider_credential_schema = FormFieldOutput(
        many=True, source="manifest.provider_credential_schema"
    )
    model_credential_schema = ModelFormOutput(
        source="manifest.model_credential_schema", allow_null=True
    )
    configured = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=selectors.PROVIDER_STATUSES,
        help_text="unconfigured; validating while a credential or custom model is being "
        "checked; else valid (all passed), invalid (all failed), partial (some failed) or "
        "unchecked.",
    )
    validated_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    active_credential_id = serializers.IntegerField(source="active_credential.pk", allow_null=True)
    credential_count = serializers.IntegerField()
    custom_model_count = serializers.IntegerField()
    quotas = QuotaOutput(many=True)

    def get_icon_url(self, view: selectors.ProviderView) -> str:
        return static(view.manifest.icon)

    def get_help(self, view: selectors.ProviderView) -> dict[str, Any]:
        return {"title": I18nOutput(view.manifest.help.title).data, "url": view.manifest.help.url}


class CredentialOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    validated_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    credentials = serializers.SerializerMethodField(
        help_text="Form values; secrets as obfuscated hints (send a hint back to keep the secret)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_credentials(self, obj: Any) -> dict[str, Any]:
        return credentials.shown(obj)


class FallbackField(serializers.Serializer):
    provider = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=255)


class ModelOutput(serializers.Serializer):
    id = serializers.CharField(help_text="Opaque id of this model within its provider.")
    provider = serializers.CharField()
    model = serializers.CharField()
    label = serializers.SerializerMethodField()
    model_type = serializers.CharField()
    source = serializers.CharField(help_text="predefined or custom")
    features = serializers.ListField(child=serializers.CharField())
    context_size = serializers.IntegerField(allow_null=True)
    mode = serializers.CharField(allow_null=True)
    pricing = PricingOutput(allow_null=True)
    enabled = serializers.BooleanField()
    load_balancing_enabled = serializers.BooleanField()
    status = serializers.ChoiceField(
        choices=selectors.MODEL_STATUSES,
        help_text="unconfigured while the provider has no credential (a predefined model), "
        "else its check's status.",
    )
    usable = serializers.BooleanField()
    is_default = serializers.BooleanField(help_text="The workspace's default of its type.")
    deprecated = serializers.BooleanField()
    custom_model_id = serializers.IntegerField(source="custom_model.pk", allow_null=True)
    fallbacks = FallbackField(many=True, help_text="Tried in order when this model fails.")
    alias = serializers.CharField(help_text='Its name in the OpenAI-compatible gateway, or "".')
    cooldown_until = serializers.DateTimeField(
        source="cooldown.ends_at",
        allow_null=True,
        default=None,
        help_text="While the model's own credentials rest after failing (load balancing on), "
        "calls go to its load-balancing entries.",
    )
    cooldown_reason = serializers.CharField(
        source="cooldown.reason",
        allow_null=True,
        default=None,
        help_text="The error that cooled them: rate_limit, authorization, server_unavailable, ...",
    )
    last_error = serializers.CharField(
        source="custom_model.last_error",
        allow_null=True,
        help_text="A custom model's last check failure, in the backend's words.",
    )
    credentials = serializers.SerializerMethodField()
    details = serializers.JSONField(source="custom_model.details", allow_null=True)

    def get_label(self, view: selectors.ModelView) -> dict[str, str]:
        return {"en_US": view.label, "zh_Hans": view.label_zh}

    def get_credentials(self, view: selectors.ModelView) -> dict[str, Any] | None:
        return credentials.shown(view.custom_model) if view.custom_model else None


class LoadBalancingEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    weight = serializers.IntegerField()
    enabled = serializers.BooleanField()
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    last_error = serializers.CharField()
    cooldown_until = serializers.DateTimeField(
        source="cooldown.ends_at",
        allow_null=True,
        default=None,
        help_text="While the entry rests after failing, calls go to the model's other entries.",
    )
    cooldown_reason = serializers.CharField(
        source="cooldown.reason",
        allow_null=True,
        default=None,
        help_text="The error that cooled it: rate_limit, authorization, server_unavailable, ...",
    )
    credential_id = serializers.IntegerField(allow_null=True)
    credential_name = serializers.CharField(source="credential.name", allow_null=True)
    credentials = serializers.SerializerMethodField()

    def get_credentials(self, obj: Any) -> dict[str, Any] | None:
        return None if obj.credential_id else credentials.shown(obj)


class DefaultModelOutput(serializers.Serializer):
    model_type = serializers.CharField()
    provider = serializers.CharField(source="model.provider", allow_null=True)
    model = serializers.CharField(source="model.model", allow_null=True)
    label = serializers.CharField(source="model.label", allow_null=True)
    source = serializers.CharField(
        help_text="configured (chosen by the workspace), fallback (the first usable model of "
        "the type, in catalog order) or none (no usable model of the type)."
    )


class ValidationJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    model_type = serializers.CharField()
    model = serializers.CharField()
    target = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    valid = serializers.BooleanField(allow_null=True)
    error_code = serializers.CharField(
        help_text="authorization, rate_limit, quota, server_unavailable, connection, timeout, "
        "bad_request, not_found, ..."
    )
    error_message = serializers.CharField(help_text="The backend's own words, bounded.")
    details = serializers.JSONField(help_text="What the backend reported (type, abilities, ...).")
    latency_ms = serializers.IntegerField(allow_null=True)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_target(self, job: ValidationJob) -> dict[str, Any]:
        for kind in ("credential", "custom_model", "lb_entry"):
            if getattr(job, f"{kind}_id"):
                return {"kind": kind, "id": getattr(job, f"{kind}_id")}
        return {"kind": None, "id": None}


class AuditLogOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.get_username", allow_null=True)
    api_key = serializers.CharField(source="api_key.prefix", allow_null=True)
    action = serializers.CharField()
    provider = serializers.CharField()
    target = serializers.CharField()
    changes = serializers.JSONField()


# --- Input serializers ------------------------------------------------------------------------


class CredentialsField(serializers.DictField):
    """A form's values by variable; checked against the provider's schema by the service."""

    MAX_FIELDS = 100  # the largest form has a few dozen; each unknown one gets its own error

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.JSONField(), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict) and len(data) > self.MAX_FIELDS:
            raise serializers.ValidationError(
                f"At most {self.MAX_FIELDS} fields: this has {len(data)}."
            )
        return super().to_internal_value(data)


class CredentialInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="Default")
    credentials = CredentialsField()


class CredentialPatchInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    credentials = CredentialsField(required=False)


class CustomModelInput(serializers.Serializer):
    model = Text(max_length=255)
    model_type = serializers.ChoiceField(choices=MODEL_TYPES)
    credentials = CredentialsField()


class ModelPatchInput(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    load_balancing_enabled = serializers.BooleanField(required=False)
    fallbacks = FallbackField(
        many=True,
        required=False,
        help_text="Other models of the same type, tried in order when every entry of this one "
        "fails with a rate limit, an auth error, a 5xx or a timeout. [] clears the chain.",
    )
    credentials = CredentialsField(
        required=False, help_text="Custom models only: new form values (PATCH semantics)."
    )
    alias = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The model's name in the OpenAI-compatible gateway (/v1), besides "
        'provider/model; "" removes it.',
    )


class LoadBalancingEntryInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, default="")
    weight = serializers.IntegerField(default=1)
    enabled = serializers.BooleanField(default=True)
    credential_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    credentials = CredentialsField(required=False, allow_null=True, default=None)


class LoadBalancingEntryPatchInput(serializers.Serializer):
    weight = serializers.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)
    credentials = CredentialsField(required=False)


class DefaultModelInput(serializers.Serializer):
    model_type = serializers.ChoiceField(choices=MODEL_TYPES)
    provider = serializers.CharField(allow_null=True, required=False)
    model = serializers.CharField(allow_null=True, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("provider")) != bool(data.get("model")):
            raise serializers.ValidationError(
                {"model": ["Give provider and model together, or neither to clear the default."]}
            )
        return data


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    given = serializer_class(data=request.data)
    given.is_valid(raise_exception=True)
    return dict(given.validated_data)


# --- Views ------------------------------------------------------------------------------------


class SettingsApi(TenantApi):
    required_perms = READ_WRITE


class ProviderListApi(SettingsApi):
    @extend_schema(
        parameters=[OpenApiParameter("model_type", enum=MODEL_TYPES)],
        responses=ProviderOutput(many=True),
        summary="Every provider, configured ones first",
    )
    def get(self, request: Request) -> Response:
        model_type = query.choice(request.query_params, "model_type", MODEL_TYPES)
        views = selectors.provider_list(tenant=request.tenant, model_type=model_type)
        return Response(ProviderOutput(views, many=True).data)


class ProviderDetailApi(SettingsApi):
    @extend_schema(responses=ProviderOutput, summary="One provider with this workspace's status")
    def get(self, request: Request, provider: str) -> Response:
        view = selectors.provider_get(tenant=request.tenant, provider=provider)
        return Response(ProviderOutput(view).data)


class CredentialListApi(SettingsApi):
    @extend_schema(responses=CredentialOutput(many=True), summary="Named credentials")
    def get(self, request: Request, provider: str) -> Response:
        rows = selectors.credential_list(tenant=request.tenant, provider=provider)
        return Response(CredentialOutput(rows, many=True).data)

    @extend_schema(
        request=CredentialInput, responses={201: CredentialOutput}, summary="Add a credential"
    )
    def post(self, request: Request, provider: str) -> Response:
        data = _valid(CredentialInput, request)
        credential = services.credential_create(
            tenant=request.tenant,
            provider=provider,
            name=data["name"],
            values=data["credentials"],
            actor=self.principal,
        )
        return Response(CredentialOutput(credential).data, status=201)


class CredentialDetailApi(SettingsApi):
    def _get(self, request: Request, provider: str, credential_id: int) -> Any:
        return selectors.credential_get(
            tenant=request.tenant, provider=provider, credential_id=credential_id
        )

    @extend_schema(responses=CredentialOutput, summary="One credential")
    def get(self, request: Request, provider: str, credential_id: int) -> Response:
        return Response(CredentialOutput(self._get(request, provider, credential_id)).data)

    @extend_schema(
        request=CredentialInput,
        responses=CredentialOutput,
        summary="Replace a credential's values (send a secret's hint back to keep it)",
    )
    def put(self, request: Request, provider: str, credential_id: int) -> Response:
        data = _valid(CredentialInput, request)
        credential = services.credential_update(
            credential=self._get(request, provider, credential_id),
            values=data["credentials"],
            name=data["name"],
            partial=False,
            actor=self.principal,
        )
        return Response(CredentialOutput(credential).data)

    @extend_schema(
        request=CredentialPatchInput,
        responses=CredentialOutput,
        summary="Change some of a credential's values or its name",
    )
    def patch(self, request: Request, provider: str, credential_id: int) -> Response:
        data = _valid(CredentialPatchInput, request)
        credential = services.credential_update(
            credential=self._get(request, provider, credential_id),
            values=data.get("credentials"),
            name=data.get("name"),
            partial=True,
            actor=self.principal,
        )
        return Response(CredentialOutput(credential).data)

    @extend_schema(responses={204: None}, summary="Delete a credential")
    def delete(self, request: Request, provider: str, credential_id: int) -> Response:
        services.credential_delete(
            credential=self._get(request, provider, credential_id), actor=self.principal
        )
        return Response(status=204)


class CredentialActivateApi(SettingsApi):
    @extend_schema(request=None, responses=CredentialOutput, summary="Make this credential active")
    def post(self, request: Request, provider: str, credential_id: int) -> Response:
        credential = selectors.credential_get(
            tenant=request.tenant, provider=provider, credential_id=credential_id
        )
        credential = services.credential_activate(credential=credential, actor=self.principal)
        return Response(CredentialOutput(credential).data)


class CredentialValidateApi(SettingsApi):
    @extend_schema(
        request=None,
        responses={202: ValidationJobOutput},
        summary="Check this credential against the provider (queued job)",
    )
    def post(self, request: Request, provider: str, credential_id: int) -> Response:
        credential = selectors.credential_get(
            tenant=request.tenant, provider=provider, credential_id=credential_id
        )
        job = validation.validation_queue(target=credential)
        return Response(ValidationJobOutput(job).data, status=202)


class ModelValidateApi(SettingsApi):
    @extend_schema(
        request=None,
        responses={202: ValidationJobOutput},
        summary="Check a model works: a custom model with its own credentials, a predefined one "
        "with the provider's active credential (queued job)",
    )
    def post(self, request: Request, provider: str, model_id: str) -> Response:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        if view.custom_model is not None:
            job = validation.validation_queue(target=view.custom_model)
        else:
            active = selectors.workspace_state(tenant=request.tenant).active_credential(provider)
            if active is None:
                raise errors.Conflict(
                    "Configure the provider's credentials first.", code="not_configured"
                )
            job = validation.validation_queue(
                target=active, model_type=view.model_type, model=view.model
            )
        return Response(ValidationJobOutput(job).data, status=202)


class LoadBalancingValidateApi(SettingsApi):
    @extend_schema(
        request=None,
        responses={202: ValidationJobOutput},
        summary="Check a load-balancing entry again (queued job); valid, it rejoins the rotation",
    )
    def post(self, request: Request, provider: str, model_id: str, entry_id: int) -> Response:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        entry = selectors.lb_entry_get(tenant=request.tenant, view=view, entry_id=entry_id)
        job = validation.validation_queue(target=entry)
        return Response(ValidationJobOutput(job).data, status=202)


class ValidationDetailApi(SettingsApi):
    @extend_schema(responses=ValidationJobOutput, summary="A validation job and its result")
    def get(self, request: Request, job_id: int) -> Response:
        job = ValidationJob.objects.filter(tenant=request.tenant, pk=job_id).first()
        if job is None:
            raise errors.NotFound("No such validation job.")
        return Response(ValidationJobOutput(job).data)


class DiscoverInput(serializers.Serializer):
    credentials = CredentialsField(help_text="The model form's values (server URL, key...).")


class ProposalOutput(serializers.Serializer):
    model = serializers.CharField()
    model_type = serializers.CharField()
    details = serializers.JSONField()
    added = serializers.BooleanField(help_text="Already a custom model of this workspace.")


class ImportInput(DiscoverInput):
    class ModelRef(serializers.Serializer):
        model = Text(max_length=255)
        model_type = serializers.ChoiceField(choices=MODEL_TYPES)

    models = ModelRef(many=True, allow_empty=False)


class DiscoverApi(SettingsApi):
    required_perms = {"POST": Perm.CHANGE_SETTINGS}

    @extend_schema(
        request=DiscoverInput,
        responses=ProposalOutput(many=True),
        summary="Ask the server which models it serves (Xinference, Ollama, OpenAI-compatible...)",
    )
    def post(self, request: Request, provider: str) -> Response:
        data = _valid(DiscoverInput, request)
        found = discovery.discover(
            tenant=request.tenant, provider=provider, values=data["credentials"]
        )
        return Response(ProposalOutput(found, many=True).data)


class ImportApi(SettingsApi):
    required_perms = {"POST": Perm.CHANGE_SETTINGS}

    @extend_schema(
        request=ImportInput,
        responses={
            201: inline_serializer(
                "ImportOutput",
                {
                    "added": ModelOutput(many=True),
                    "refused": serializers.DictField(child=serializers.CharField()),
                },
            )
        },
        summary="Add discovered models as custom models (each is then validated)",
    )
    def post(self, request: Request, provider: str) -> Response:
        data = _valid(ImportInput, request)
        added, refused = discovery.import_models(
            tenant=request.tenant,
            provider=provider,
            values=data["credentials"],
            models=[(m["model_type"], m["model"]) for m in data["models"]],
            actor=self.principal,
        )
        views = {
            (v.model_type, v.model): v
            for v in selectors.provider_models(tenant=request.tenant, provider=provider)
        }
        return Response(
            {
                "added": ModelOutput(
                    [views[(c.model_type, c.model)] for c in added], many=True
                ).data,
                "refused": refused,
            },
            status=201,
        )


class ModelListApi(SettingsApi):
    @extend_schema(
        responses=ModelOutput(many=True), summary="Predefined and custom models of a provider"
    )
    def get(self, request: Request, provider: str) -> Response:
        views = selectors.provider_models(tenant=request.tenant, provider=provider)
        return Response(ModelOutput(views, many=True).data)

    @extend_schema(
        request=CustomModelInput,
        responses={201: ModelOutput},
        summary="Add a custom model with its credentials",
    )
    def post(self, request: Request, provider: str) -> Response:
        data = _valid(CustomModelInput, request)
        custom = services.custom_model_create(
            tenant=request.tenant,
            provider=provider,
            model=data["model"],
            model_type=data["model_type"],
            values=data["credentials"],
            actor=self.principal,
        )
        view = selectors.model_get(
            tenant=request.tenant,
            provider=provider,
            model_key=selectors.model_id(custom.model_type, custom.model),
        )
        return Response(ModelOutput(view).data, status=201)


class ModelDetailApi(SettingsApi):
    @extend_schema(responses=ModelOutput, summary="One model")
    def get(self, request: Request, provider: str, model_id: str) -> Response:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        return Response(ModelOutput(view).data)

    @extend_schema(
        request=ModelPatchInput,
        responses=ModelOutput,
        summary="Enable, disable, switch load balancing, or edit a custom model's credentials",
    )
    def patch(self, request: Request, provider: str, model_id: str) -> Response:
        data = _valid(ModelPatchInput, request)
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        if "credentials" in data:
            if view.custom_model is None:
                raise errors.InvalidInput(
                    fields={"credentials": ["A predefined model uses the provider's credential."]}
                )
            services.custom_model_update(
                custom=view.custom_model,
                values=data["credentials"],
                partial=True,
                actor=self.principal,
            )
        if {"enabled", "load_balancing_enabled", "fallbacks", "alias"} & set(data):
            services.model_setting_update(
                tenant=request.tenant,
                view=view,
                enabled=data.get("enabled"),
                load_balancing_enabled=data.get("load_balancing_enabled"),
                fallbacks=data.get("fallbacks"),
                alias=data.get("alias"),
                actor=self.principal,
            )
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        return Response(ModelOutput(view).data)

    @extend_schema(responses={204: None}, summary="Delete a custom model")
    def delete(self, request: Request, provider: str, model_id: str) -> Response:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        if not isinstance(view.custom_model, CustomModel):
            raise errors.Conflict(
                "A predefined model cannot be deleted; disable it instead.",
                code="predefined_model",
            )
        services.custom_model_delete(custom=view.custom_model, actor=self.principal)
        return Response(status=204)


class LoadBalancingListApi(SettingsApi):
    @extend_schema(responses=LoadBalancingEntryOutput(many=True), summary="A model's LB entries")
    def get(self, request: Request, provider: str, model_id: str) -> Response:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        entries = selectors.lb_entry_list(tenant=request.tenant, view=view)
        return Response(LoadBalancingEntryOutput(entries, many=True).data)

    @extend_schema(
        request=LoadBalancingEntryInput,
        responses={201: LoadBalancingEntryOutput},
        summary="Add a load-balancing entry",
    )
    def post(self, request: Request, provider: str, model_id: str) -> Response:
        data = _valid(LoadBalancingEntryInput, request)
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        entry = services.lb_entry_create(
            tenant=request.tenant,
            view=view,
            name=data["name"],
            credential_id=data["credential_id"],
            values=data["credentials"],
            weight=data["weight"],
            enabled=data["enabled"],
            actor=self.principal,
        )
        return Response(LoadBalancingEntryOutput(entry).data, status=201)


class LoadBalancingDetailApi(SettingsApi):
    def _get(self, request: Request, provider: str, model_id: str, entry_id: int) -> Any:
        view = selectors.model_get(tenant=request.tenant, provider=provider, model_key=model_id)
        return view, selectors.lb_entry_get(tenant=request.tenant, view=view, entry_id=entry_id)

    @extend_schema(responses=LoadBalancingEntryOutput, summary="One load-balancing entry")
    def get(self, request: Request, provider: str, model_id: str, entry_id: int) -> Response:
        _, entry = self._get(request, provider, model_id, entry_id)
        return Response(LoadBalancingEntryOutput(entry).data)

    @extend_schema(
        request=LoadBalancingEntryPatchInput,
        responses=LoadBalancingEntryOutput,
        summary="Change an entry's weight, switch, or own credentials",
    )
    def patch(self, request: Request, provider: str, model_id: str, entry_id: int) -> Response:
        data = _valid(LoadBalancingEntryPatchInput, request)
        view, entry = self._get(request, provider, model_id, entry_id)
        entry = services.lb_entry_update(
            entry=entry,
            view=view,
            weight=data.get("weight"),
            enabled=data.get("enabled"),
            values=data.get("credentials"),
            actor=self.principal,
        )
        return Response(LoadBalancingEntryOutput(entry).data)

    @extend_schema(responses={204: None}, summary="Delete a load-balancing entry")
    def delete(self, request: Request, provider: str, model_id: str, entry_id: int) -> Response:
        _, entry = self._get(request, provider, model_id, entry_id)
        services.lb_entry_delete(entry=entry, actor=self.principal)
        return Response(status=204)


class DefaultModelsApi(SettingsApi):
    @extend_schema(responses=DefaultModelOutput(many=True), summary="Default model per type")
    def get(self, request: Request) -> Response:
        views = selectors.default_models(tenant=request.tenant)
        return Response(DefaultModelOutput(views, many=True).data)

    @extend_schema(
        request=DefaultModelInput,
        responses=DefaultModelOutput(many=True),
        summary="Set (or, with provider and model null, clear) the default model of a type",
    )
    def put(self, request: Request) -> Response:
        data = _valid(DefaultModelInput, request)
        if data.get("provider"):
            services.default_model_set(
                tenant=request.tenant,
                model_type=data["model_type"],
                provider=data["provider"],
                model=data["model"],
                actor=self.principal,
            )
        else:
            services.default_model_clear(
                tenant=request.tenant, model_type=data["model_type"], actor=self.principal
            )
        views = selectors.default_models(tenant=request.tenant)
        return Response(DefaultModelOutput(views, many=True).data)


class AvailableModelsApi(SettingsApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("model_type", enum=MODEL_TYPES),
            OpenApiParameter("feature", enum=list(FEATURES)),
        ],
        responses=ModelOutput(many=True),
        summary="Every model this workspace can use now, across providers",
    )
    def get(self, request: Request) -> Response:
        model_type = query.choice(request.query_params, "model_type", MODEL_TYPES)
        feature = query.choice(request.query_params, "feature", FEATURES)
        views = selectors.available_models(
            tenant=request.tenant, model_type=model_type, feature=feature
        )
        return Response(ModelOutput(views, many=True).data)


class AuditLogPagination(query.Pagination):
    max_limit = 500


class AuditLogApi(SettingsApi):
    required_perms = {"GET": Perm.CHANGE_SETTINGS}

    @extend_schema(
        parameters=[
            OpenApiParameter("provider", str),
            *openapi.page_parameters(AuditLogPagination.max_limit),
        ],
        responses=openapi.page_of("AuditLogPage", AuditLogOutput),
        operation_id="v1_audit_log_list",
        summary="Who changed which setting, newest first (admins only)",
    )
    def get(self, request: Request) -> Response:
        entries = selectors.audit_log(
            tenant=request.tenant, provider=request.query_params.get("provider") or None
        )
        paginator = AuditLogPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(AuditLogOutput(page, many=True).data)

"""/api/v1/tenants and /api/v1/api-keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import errors
from config.serializers import DecimalText, Text
from tenants import selectors, services
from tenants.authentication import SESSION_TENANT_KEY
from tenants.models import ApiKeyScope
from tenants.principals import Perm, Principal


class TenantApi(APIView):
    """Base of every tenant-scoped view: `request.tenant` and `self.principal` are set."""

    required_perms: dict[str, Perm] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        request.tenant = request.auth.tenant

    @property
    def principal(self) -> Principal:
        return self.request.auth


class TenantOutput(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.SlugField()


class CurrentTenantOutput(TenantOutput):
    role = serializers.CharField(allow_null=True, help_text="Your role; null for an API key.")
    auth = serializers.ChoiceField(choices=["session", "api_key"])
    permissions = serializers.ListField(child=serializers.CharField())
    monthly_budget = serializers.DecimalField(max_digits=16, decimal_places=8, allow_null=True)
    budget_currency = serializers.CharField()


def _current(principal: Principal) -> dict[str, Any]:
    return {
        "name": principal.tenant.name,
        "slug": principal.tenant.slug,
        "monthly_budget": principal.tenant.monthly_budget,
        "budget_currency": principal.tenant.budget_currency,
        "role": principal.role,
        "auth": "api_key" if principal.api_key else "session",
        "permissions": sorted(principal.perms),
    }


class BudgetInput(serializers.Serializer):
    monthly_budget = DecimalText(
        max_digits=16, decimal_places=8, min_value=Decimal("0"), required=False, allow_null=True,
        help_text="What model calls may cost in a calendar month (UTC); null: no budget.",
    )  # fmt: skip
    budget_currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False,
        help_text="ISO 4217, e.g. USD: costs in other currencies do not count against it.",
    )  # fmt: skip


class TenantListApi(TenantApi):
    class Output(TenantOutput):
        role = serializers.CharField(allow_null=True)
        current = serializers.BooleanField()

    @extend_schema(responses=Output(many=True), summary="Workspaces you can act in")
    def get(self, request: Request) -> Response:
        if self.principal.api_key is not None:
            rows = [{**_current(self.principal), "current": True}]
        else:
            rows = [
                {
                    "name": m.tenant.name,
                    "slug": m.tenant.slug,
                    "role": m.role,
                    "current": m.tenant_id == request.tenant.pk,
                }
                for m in selectors.membership_list_for_user(user=request.user)
            ]
        return Response(self.Output(rows, many=True).data)


class TenantCurrentApi(TenantApi):
    required_perms = {"PATCH": Perm.CHANGE_SETTINGS}

    class SwitchInput(serializers.Serializer):
        slug = serializers.SlugField()

    @extend_schema(responses=CurrentTenantOutput, summary="The workspace this request acts in")
    def get(self, request: Request) -> Response:
        return Response(CurrentTenantOutput(_current(self.principal)).data)

    @extend_schema(
        request=BudgetInput,
        responses=CurrentTenantOutput,
        summary="Set the workspace's monthly budget (owners, admins, and write keys held to no "
        "limit of their own)",
    )
    def patch(self, request: Request) -> Response:
        given = BudgetInput(data=request.data)
        given.is_valid(raise_exception=True)
        tenant = self.principal.tenant
        services.tenant_set_budget(
            tenant=tenant,
            monthly_budget=given.validated_data.get("monthly_budget", tenant.monthly_budget),
            currency=given.validated_data.get("budget_currency", tenant.budget_currency),
            granted_by=self.principal,
        )
        return Response(CurrentTenantOutput(_current(self.principal)).data)

    @extend_schema(
        request=SwitchInput,
        responses=CurrentTenantOutput,
        summary="Switch the browser session to another of your workspaces",
    )
    def put(self, request: Request) -> Response:
        if self.principal.api_key is not None:
            raise errors.PermissionDenied("An API key belongs to one workspace; it cannot switch.")
        given = self.SwitchInput(data=request.data)
        given.is_valid(raise_exception=True)
        membership = selectors.membership_get_by_slug(
            user=request.user, slug=given.validated_data["slug"]
        )
        request.session[SESSION_TENANT_KEY] = membership.tenant_id
        return Response(CurrentTenantOutput(_current(Principal.for_member(membership))).data)


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The visible start of the key; the rest is secret.")
    scopes = serializers.ListField(child=serializers.CharField())
    created_by = serializers.CharField(source="created_by.get_username", allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    rpm_limit = serializers.IntegerField(allow_null=True, help_text="Model calls per minute.")
    tpm_limit = serializers.IntegerField(allow_null=True, help_text="Tokens per minute.")
    monthly_budget = serializers.DecimalField(max_digits=16, decimal_places=8, allow_null=True)
    budget_currency = serializers.CharField()


class ApiKeyLimitsInput(BudgetInput):
    rpm_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000,
        help_text="Model calls per minute with this key; null: unlimited.",
    )  # fmt: skip
    tpm_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000_000,
        help_text="Tokens (prompt + completion) per minute with this key; null: unlimited.",
    )  # fmt: skip


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The API key. Shown this once; store it now.")


class ApiKeyListCreateApi(TenantApi):
    required_perms = {"GET": Perm.READ_SETTINGS, "POST": Perm.MANAGE_API_KEYS}

    class CreateInput(ApiKeyLimitsInput):
        name = Text(max_length=100)
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=ApiKeyScope.choices),
            default=[ApiKeyScope.INVOKE, ApiKeyScope.READ],
            allow_empty=False,
        )

    @extend_schema(responses=ApiKeyOutput(many=True), summary="API keys of this workspace")
    def get(self, request: Request) -> Response:
        keys = selectors.api_key_list(tenant=request.tenant)
        return Response(ApiKeyOutput(keys, many=True).data)

    @extend_schema(
        request=CreateInput, responses={201: ApiKeyCreatedOutput}, summary="Create an API key"
    )
    def post(self, request: Request) -> Response:
        given = self.CreateInput(data=request.data)
        given.is_valid(raise_exception=True)
        api_key, raw_key = services.api_key_create(
            tenant=request.tenant,
            created_by=self.principal.membership.user if self.principal.membership else None,
            granted_by=self.principal,
            **given.validated_data,
        )
        return Response({**ApiKeyOutput(api_key).data, "key": raw_key}, status=201)


class ApiKeyDetailApi(TenantApi):
    required_perms = {"GET": Perm.READ_SETTINGS, "PATCH": Perm.MANAGE_API_KEYS}

    @extend_schema(responses=ApiKeyOutput, summary="One API key")
    def get(self, request: Request, key_id: int) -> Response:
        api_key = selectors.api_key_get(tenant=request.tenant, key_id=key_id)
        return Response(ApiKeyOutput(api_key).data)

    @extend_schema(
        request=ApiKeyLimitsInput, responses=ApiKeyOutput, summary="Change a key's limits"
    )
    def patch(self, request: Request, key_id: int) -> Response:
        given = ApiKeyLimitsInput(data=request.data)
        given.is_valid(raise_exception=True)
        api_key = selectors.api_key_get(tenant=request.tenant, key_id=key_id)
        api_key = services.api_key_set_limits(
            api_key=api_key, granted_by=self.principal, **given.validated_data
        )
        return Response(ApiKeyOutput(api_key).data)


class ApiKeyRevokeApi(TenantApi):
    required_perms = {"POST": Perm.MANAGE_API_KEYS}

    @extend_schema(request=None, responses=ApiKeyOutput, summary="Revoke an API key")
    def post(self, request: Request, key_id: int) -> Response:
        api_key = selectors.api_key_get(tenant=request.tenant, key_id=key_id)
        api_key = services.api_key_revoke(api_key=api_key)
        return Response(ApiKeyOutput(api_key).data)

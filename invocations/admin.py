"""Operators' admin for invocations: read-only, for looking into calls, their errors and costs.

Rows are written only by the invocation services and workers; `request` holds the caller's input,
never a credential."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from invocations.models import Invocation


@admin.register(Invocation)
class InvocationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "provider",
        "model_type",
        "model",
        "status",
        "error_code",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "currency",
        "latency_ms",
    ]
    list_filter = ["status", "provider", "model_type", "error_code"]
    search_fields = ["model", "provider", "tenant__name", "idempotency_key"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the table grows with every call: skip the second COUNT(*)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

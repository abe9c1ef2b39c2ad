"""Every write to a workspace's provider settings replaces its settings version once committed,
so every process's cached routes of it are rebuilt before their next call (see routing)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from providers import balancing
from providers.models import (
    AuditLogEntry,
    CustomModel,
    DefaultModel,
    LoadBalancingEntry,
    ModelSetting,
    ProviderCredential,
    ProviderQuota,
)
from tenants import audit
from tenants.models import Tenant

ROUTING_MODELS = (
    ProviderCredential,
    CustomModel,
    ModelSetting,
    LoadBalancingEntry,
    DefaultModel,
    ProviderQuota,
)


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    balancing.settings_changed(instance.tenant_id)


def _tenant_saved(sender: type, instance: Tenant, created: bool, **kwargs: Any) -> None:
    if created:  # a database may hand out a deleted workspace's id again
        balancing.settings_changed(instance.pk)


def _member_change(sender: type, tenant: Tenant, **entry: Any) -> None:
    """Members and invitations (tenants.audit) go to the same audit log."""
    AuditLogEntry.objects.create(
        tenant=tenant,
        actor=entry["user"],
        api_key=entry["api_key"],
        action=entry["action"],
        target=entry["target"],
        changes=entry["changes"],
    )


def connect() -> None:
    for model in ROUTING_MODELS:
        post_save.connect(_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-del")
    post_save.connect(_tenant_saved, sender=Tenant, dispatch_uid="routing-tenant")
    audit.member_change.connect(_member_change, dispatch_uid="audit-member-change")

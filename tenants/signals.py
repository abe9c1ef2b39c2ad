"""A saved or deleted API key or workspace makes every process forget the keys it knows (see
`services.api_key_authenticate`): a revoked key is refused by the very next request."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from tenants import services
from tenants.models import ApiKey, Tenant


def _changed(sender: type, **kwargs: Any) -> None:
    services.api_keys_changed()


def connect() -> None:
    for model in (ApiKey, Tenant):  # what an authenticated key carries
        post_save.connect(_changed, sender=model, dispatch_uid=f"api-keys-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"api-keys-{model.__name__}-del")

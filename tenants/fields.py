from __future__ import annotations

from django.db import models


class SecretsJSONField(models.JSONField):
    """A JSON object whose string values may be tenant-encrypted envelopes (`tenants.crypto`).

    The field marks where secrets live, so that key rotation finds them all without a registry:
    a model using it must have a `tenant` foreign key, and each secret is sealed with the place
    `secret_place(instance, field name, key)`, binding it to its row, field and key.
    """


def secret_place(instance: models.Model, field_name: str, key: str) -> str:
    return f"{instance._meta.label_lower}:{instance.pk}/{field_name}/{key}"

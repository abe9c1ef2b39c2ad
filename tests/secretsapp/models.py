"""A test-only holder of tenant secrets, so key rotation is tested through the same generic
mechanism (`SecretsJSONField`) that the provider credential models use."""

from django.db import models

from tenants.fields import SecretsJSONField


class SecretHolder(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)
    label = models.CharField(max_length=50)
    config = SecretsJSONField(default=dict)

    class Meta:
        app_label = "secretsapp"

    def __str__(self) -> str:
        return self.label

"""An invocation: one model call run as a job, with its usage, cost and timings."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from providers.models import (
    CustomModel,
    JobStatus,
    LoadBalancingEntry,
    ModelType,
    ProviderCredential,
)
from tenants.models import ApiKey, Tenant


class Source(models.TextChoices):
    JOB = "job", _("Job")  # POST /api/v1/invocations, run by a worker
    GATEWAY = "gateway", _("Gateway")  # the OpenAI-compatible /v1, answered in the request


class Invocation(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.JOB)
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_type = models.CharField(max_length=20, choices=ModelType.choices)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=255)
    credential = models.ForeignKey(
        ProviderCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    custom_model = models.ForeignKey(
        CustomModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who answered: the load-balancing entry (none: the model's own credentials), its name as it
    # was, and the model that finally answered (another one when a fallback did).
    lb_entry = models.ForeignKey(
        LoadBalancingEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    served_by = models.CharField(max_length=100, blank=True, default="")
    answered_provider = models.CharField(max_length=64, blank=True, default="")
    answered_model = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    request = models.JSONField(default=dict)  # the input, never a credential
    result = models.JSONField(default=dict, blank=True)
    result_file = models.FileField(upload_to="invocations/", blank=True, default="")
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_counted = models.BooleanField(default=False)  # we counted: the backend reported none
    audio_seconds = models.FloatField(null=True, blank=True)
    characters = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # NULL, not "", when absent: the unique constraint below only covers given keys.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Until when a running job is its worker's: renewed while it runs (providers.jobs.Leases).
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="invocation_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"invocation #{self.pk} {self.provider}/{self.model}: {self.status}"

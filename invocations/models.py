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
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.JOB, verbose_name=_("source")
    )
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("api key"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("user"),
    )
    model_type = models.CharField(
        max_length=20, choices=ModelType.choices, verbose_name=_("model type")
    )
    provider = models.CharField(max_length=64, verbose_name=_("provider"))
    model = models.CharField(max_length=255, verbose_name=_("model"))
    credential = models.ForeignKey(
        ProviderCredential,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("credential"),
    )
    custom_model = models.ForeignKey(
        CustomModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("custom model"),
    )
    # Who answered: the load-balancing entry (none: the model's own credentials), its name as it
    # was, and the model that finally answered (another one when a fallback did).
    lb_entry = models.ForeignKey(
        LoadBalancingEntry,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("lb entry"),
    )
    served_by = models.CharField(
        max_length=100, blank=True, default="", verbose_name=_("served by")
    )
    answered_provider = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("answered provider")
    )
    answered_model = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("answered model")
    )
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, verbose_name=_("status")
    )
    request = models.JSONField(default=dict, verbose_name=_("request"))  # never a credential
    result = models.JSONField(default=dict, blank=True, verbose_name=_("result"))
    result_file = models.FileField(
        upload_to="invocations/", blank=True, default="", verbose_name=_("result file")
    )
    error_code = models.CharField(
        max_length=40, blank=True, default="", verbose_name=_("error code")
    )
    error_message = models.TextField(blank=True, default="", verbose_name=_("error message"))
    prompt_tokens = models.PositiveIntegerField(default=0, verbose_name=_("prompt tokens"))
    completion_tokens = models.PositiveIntegerField(default=0, verbose_name=_("completion tokens"))
    # We counted the tokens: the backend reported none.
    usage_counted = models.BooleanField(default=False, verbose_name=_("usage counted"))
    audio_seconds = models.FloatField(null=True, blank=True, verbose_name=_("audio seconds"))
    characters = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("characters"))
    cost = models.DecimalField(
        max_digits=16, decimal_places=8, null=True, blank=True, verbose_name=_("cost")
    )
    currency = models.CharField(max_length=3, blank=True, default="", verbose_name=_("currency"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("latency ms"))
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("ttft ms"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    # NULL, not "", when absent: the unique constraint below only covers given keys.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=128, null=True, blank=True, verbose_name=_("idempotency key")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    # Until when a running job is its worker's: renewed while it runs (providers.jobs.Leases).
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("lease until"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("invocation")
        verbose_name_plural = _("invocations")
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

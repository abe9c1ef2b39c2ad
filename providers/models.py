"""A workspace's provider settings. Providers and predefined models live in the catalog (YAML), not
here: rows name them by key. Secret form fields are stored only as envelopes (`SecretsJSONField`);
`masked` keeps their obfuscated hints, so listing never decrypts anything."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tenants.fields import SecretsJSONField
from tenants.models import ApiKey, Tenant


class ModelType(models.TextChoices):
    LLM = "llm", _("LLM")
    TEXT_EMBEDDING = "text-embedding", _("Text embedding")
    RERANK = "rerank", _("Rerank")
    SPEECH2TEXT = "speech2text", _("Speech to text")
    TTS = "tts", _("Text to speech")
    MODERATION = "moderation", _("Moderation")


class CheckStatus(models.TextChoices):
    UNCHECKED = "unchecked", _("Unchecked")
    VALIDATING = "validating", _("Validating")
    VALID = "valid", _("Valid")
    INVALID = "invalid", _("Invalid")


class CheckedConfig(models.Model):
    """A form's values (secrets sealed) and what the last check of them said."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    provider = models.CharField(_("provider"), max_length=64)
    config = SecretsJSONField(default=dict)
    masked = models.JSONField(default=dict, verbose_name=_("masked"))  # secret -> its hint
    status = models.CharField(
        max_length=12,
        choices=CheckStatus.choices,
        default=CheckStatus.UNCHECKED,
        verbose_name=_("status"),
    )
    validated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("validated at"))
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        abstract = True


class ProviderCredential(CheckedConfig):
    """A named set of provider-level credentials; one per provider is active."""

    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(default=False, verbose_name=_("is active"))
    # A pending revision of an active credential (the settings page): new values held, secrets
    # sealed, until their check succeeds; the values in `config` stay in use meanwhile.
    # `pending_masked` holds every secret's hint; a secret named there but not in `pending`
    # keeps the stored one.
    pending = SecretsJSONField(default=dict, blank=True)
    pending_masked = models.JSONField(default=dict, blank=True, verbose_name=_("pending masked"))
    pending_at = models.DateTimeField(null=True, blank=True, verbose_name=_("pending at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("provider credential")
        verbose_name_plural = _("provider credentials")
        ordering = ["provider", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "name"], name="credential_unique_name"
            ),
            models.UniqueConstraint(
                fields=["tenant", "provider"],
                condition=Q(is_active=True),
                name="credential_one_active_per_provider",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "provider"])]

    def __str__(self) -> str:
        return f"{self.provider}: {self.name}"


class CustomModel(CheckedConfig):
    """A model the workspace adds itself (e.g. an Xinference model UID), with its own credentials.

    `details` keeps what the backend reported when checked (type, abilities, context size)."""

    model = models.CharField(_("model"), max_length=255)
    model_type = models.CharField(_("model type"), max_length=20, choices=ModelType.choices)
    details = models.JSONField(default=dict, blank=True, verbose_name=_("details"))

    class Meta:
        verbose_name = _("custom model")
        verbose_name_plural = _("custom models")
        ordering = ["provider", "model_type", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "model_type", "model"], name="custom_model_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} ({self.model_type})"


class ModelSetting(models.Model):
    """Per-model switches. No row means the defaults: enabled, no load balancing."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    provider = models.CharField(max_length=64, verbose_name=_("provider"))
    model = models.CharField(max_length=255, verbose_name=_("model"))
    model_type = models.CharField(
        max_length=20, choices=ModelType.choices, verbose_name=_("model type")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    load_balancing_enabled = models.BooleanField(
        default=False, verbose_name=_("load balancing enabled")
    )
    # Other models ({"provider", "model"}, same type) tried in order when every entry of this one
    # fails with an error another backend could fix (rate limit, auth, 5xx, timeout).
    fallbacks = models.JSONField(default=list, blank=True, verbose_name=_("fallbacks"))
    # The model's name in the OpenAI-compatible gateway besides provider/model ("" for none).
    alias = models.CharField(max_length=64, blank=True, default="", verbose_name=_("alias"))
    # It was the workspace's default of its type when it was switched off: switched on again, it
    # is the default again, unless a default of that type was chosen (or cleared) meanwhile.
    was_default = models.BooleanField(default=False, verbose_name=_("was default"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("model setting")
        verbose_name_plural = _("model settings")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "model_type", "model"], name="model_setting_unique"
            ),
            models.UniqueConstraint(
                fields=["tenant", "alias"], condition=~Q(alias=""), name="model_alias_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {'on' if self.enabled else 'off'}"


class LoadBalancingEntry(CheckedConfig):
    """One more credential a model's calls are spread over, by weight. Either it points at a named
    provider credential, or it carries its own (sealed) form values."""

    model = models.CharField(max_length=255, verbose_name=_("model"))
    model_type = models.CharField(
        max_length=20, choices=ModelType.choices, verbose_name=_("model type")
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))
    credential = models.ForeignKey(
        ProviderCredential,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("credential"),
    )
    weight = models.PositiveSmallIntegerField(default=1, verbose_name=_("weight"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    # Cool-downs live in Redis (providers.balancing), shared by every process.

    class Meta:
        verbose_name = _("load-balancing entry")
        verbose_name_plural = _("load-balancing entries")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "model_type", "model", "name"],
                name="lb_entry_unique_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.name} (x{self.weight})"


class DefaultModel(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    model_type = models.CharField(
        max_length=20, choices=ModelType.choices, verbose_name=_("model type")
    )
    provider = models.CharField(max_length=64, verbose_name=_("provider"))
    model = models.CharField(max_length=255, verbose_name=_("model"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("default model")
        verbose_name_plural = _("default models")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "model_type"], name="default_model_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.model_type}: {self.provider}/{self.model}"


class QuotaType(models.TextChoices):
    TRIAL = "trial", _("Trial")
    PAID = "paid", _("Paid")
    FREE = "free", _("Free")


class ProviderQuota(models.Model):
    """A usage allowance for a provider, in tokens. `used` only grows through an atomic update that
    refuses to pass `limit`."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    provider = models.CharField(max_length=64, verbose_name=_("provider"))
    quota_type = models.CharField(
        max_length=8, choices=QuotaType.choices, verbose_name=_("quota type")
    )
    limit = models.BigIntegerField(
        help_text=_("Tokens; -1 means unlimited."), verbose_name=_("limit")
    )
    used = models.BigIntegerField(default=0, verbose_name=_("used"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("provider quota")
        verbose_name_plural = _("provider quotas")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "quota_type"], name="quota_unique_type"
            ),
            models.CheckConstraint(
                condition=Q(limit__lt=0) | Q(used__lte=models.F("limit")),
                name="quota_never_overspent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.quota_type}: {self.used}/{self.limit}"


class AuditLogEntry(models.Model):
    """Who changed which setting, when. `changes` names fields and non-secret values only."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("api key"),
    )
    action = models.CharField(max_length=64, verbose_name=_("action"))
    provider = models.CharField(max_length=64, blank=True, default="", verbose_name=_("provider"))
    target = models.CharField(max_length=300, blank=True, default="", verbose_name=_("target"))
    changes = models.JSONField(default=dict, blank=True, verbose_name=_("changes"))
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log entries")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ValidationJob(models.Model):
    """One check of a credential, custom model or load-balancing entry against its backend.

    Written before it is queued; the worker claims it (queued -> running), records what the
    backend said, and copies the verdict onto the target if no newer check of it exists."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    provider = models.CharField(max_length=64, verbose_name=_("provider"))
    model_type = models.CharField(
        max_length=20, choices=ModelType.choices, verbose_name=_("model type")
    )
    model = models.CharField(max_length=255, verbose_name=_("model"))
    credential = models.ForeignKey(
        ProviderCredential,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("credential"),
    )
    custom_model = models.ForeignKey(
        CustomModel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("custom model"),
    )
    lb_entry = models.ForeignKey(
        LoadBalancingEntry,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("lb entry"),
    )
    # What a success does besides the verdict: "" nothing more; "take_over" makes the credential
    # active; "revision" checks the credential's pending revision and applies it.
    purpose = models.CharField(max_length=10, blank=True, default="", verbose_name=_("purpose"))
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, verbose_name=_("status")
    )
    valid = models.BooleanField(null=True, verbose_name=_("valid"))
    error_code = models.CharField(
        max_length=40, blank=True, default="", verbose_name=_("error code")
    )
    error_message = models.TextField(blank=True, default="", verbose_name=_("error message"))
    details = models.JSONField(default=dict, blank=True, verbose_name=_("details"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("latency ms"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    # Until when a running job is its worker's: renewed while it runs (providers.jobs.Leases).
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("lease until"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("validation job")
        verbose_name_plural = _("validation jobs")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"validation #{self.pk} {self.provider}/{self.model}: {self.status}"

    @property
    def target(self) -> CheckedConfig | None:
        return self.credential or self.custom_model or self.lb_entry

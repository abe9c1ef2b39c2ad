"""Settings: the only module that reads the environment (django-environ).

Every variable is listed, with its meaning, in `.env.example`. A `.env` file beside manage.py is
read when present (the README's run command writes one with generated keys for the embedded mode).
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var")))

# Master keys wrap each tenant's private key. The first one wraps; every one listed unwraps,
# so a new key can be put first and `manage.py rotate_master_key` run before the old one goes.
MASTER_KEYS = env.list("MASTER_KEYS")
if not MASTER_KEYS:
    raise ImproperlyConfigured("MASTER_KEYS must name at least one Fernet key (see .env.example).")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenants",
    "providers",
    "invocations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "config.text_input.TextInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "tenants.web.workspaces",
            ],
        },
    },
]

# An empty DATABASE_URL (as in a copied .env.example) means unset: SQLite under DATA_DIR.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_POOL", default=True
):
    # Every thread of a process (gunicorn's 32, the worker's 64) shares one pool of at most
    # DB_POOL_MAX_SIZE connections, instead of keeping one of its own: the default deployment
    # (2 web processes and a worker) holds at most 3 x 20 = 60, under PostgreSQL's stock
    # max_connections=100. A thread takes a connection for a request or a task (and gives it back
    # while it waits for a model backend or a long-poll, config/db.py); one that finds none free
    # waits up to DB_POOL_TIMEOUT seconds, then fails as the database being away would (with the
    # database away, that is how long a request waits before it fails).
    # Django's pool needs CONN_MAX_AGE 0: a connection goes back to the pool, not away.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A web process and a worker share the file: wait for locks rather than fail at once.
    # WAL: readers (the web) never wait for the writer (a worker finishing a job).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# Our few date formats that differ from Django's (the usage chart's "Nov 27" / "11月27日").
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_ROOT = env.str("MEDIA_ROOT", default="") or str(DATA_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "settings-providers"
LOGOUT_REDIRECT_URL = "login"
LOCALE_PATHS = [BASE_DIR / "locale"]


# Production hardening (`manage.py check --deploy` is clean): HTTPS only, HSTS and Secure cookies,
# on unless DEBUG. An empty value means unset. scripts/run, serving plain http on this machine,
# turns them off unless the environment or .env says otherwise.
def _on_unless_debug(name: str) -> bool:
    return env.bool(name) if env.str(name, default="") else not DEBUG


SECURE_SSL_REDIRECT = _on_unless_debug("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = (
    env.int("SECURE_HSTS_SECONDS")
    if env.str("SECURE_HSTS_SECONDS", default="")
    else (0 if DEBUG else 365 * 24 * 3600)
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _on_unless_debug("SECURE_HSTS_INCLUDE_SUBDOMAINS")
# Asks browsers' preload lists to carry the domain: a promise only its owner can make, so opt-in.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = _on_unless_debug("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = _on_unless_debug("CSRF_COOKIE_SECURE")
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips a client's own): trust it.
# Anywhere else a client could claim https with it, so opt-in.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("SECURE_PROXY_SSL_HEADER", default=False)
    else None
)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Redis and Celery -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="") or "redis://127.0.0.1:6379/0"
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, publishing through one client (config/broker.py)
CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_TASK_IGNORE_RESULT = True  # results live in the database rows the tasks update
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A Redis that stops answering (not refusing) must not hold a request publishing a job: it
    # fails after these seconds and the caller gets its 503 (invocations._publish).
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
# No retry of a publish that failed (Celery's default is 3, each waiting socket_timeout): a hung
# Redis costs a publishing request 5 s, not 25 (tests/integration/test_redis_outage.py). A pooled
# connection Redis closed since its last use is replaced by redis-py when taken from the pool.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery would close the worker's database connections around every task; config/celery.py
# recycles them as Django does per request instead (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-invocations": {"task": "invocations.sweep_stuck_jobs", "schedule": 60.0},
    "sweep-stuck-validations": {"task": "providers.sweep_stuck_validations", "schedule": 60.0},
}
# A job still queued after JOB_QUEUED_TIMEOUT seconds is presumed lost and queued again; a running
# job holds a lease its worker renews every third of JOB_LEASE_SECONDS, and is presumed lost (to
# be claimed again) only once that lease has run out: a live job is never run twice.
JOB_QUEUED_TIMEOUT = env.int("JOB_QUEUED_TIMEOUT", default=300)
JOB_LEASE_SECONDS = env.float("JOB_LEASE_SECONDS", default=60.0)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
# Fairness: at most this many jobs of one workspace run at once across all workers; its others
# wait in the queue, their tasks sent again every JOB_DEFER_SECONDS, so that a workspace whose
# backend is slow cannot hold every worker thread (scripts/run starts 64).
WORKSPACE_JOB_CONCURRENCY = env.int("WORKSPACE_JOB_CONCURRENCY", default=16)
JOB_DEFER_SECONDS = env.float("JOB_DEFER_SECONDS", default=0.5)
# Load balancing: seconds an entry rests after a rate limit (or quota) answer, and after any other
# failure another entry could fix (401/403, 5xx, timeout). Dify's are 60 and 10.
LB_COOLDOWN_RATE_LIMIT = env.float("LB_COOLDOWN_RATE_LIMIT", default=60.0)
LB_COOLDOWN_OTHER = env.float("LB_COOLDOWN_OTHER", default=10.0)
# The longest read timeout a credential form may set (its "Invoke timeout" and the like), seconds.
UPSTREAM_TIMEOUT_MAX = env.int("UPSTREAM_TIMEOUT_MAX", default=600)
# The longest one backend call may take in all (retries and a streamed answer included), seconds:
# a backend that trickles a byte at a time is cut off here.
UPSTREAM_CALL_DEADLINE = env.int("UPSTREAM_CALL_DEADLINE", default=600)
# Requests of one web process that may wait at once in GET/POST /api/v1/invocations?wait=N; past
# that, such a request answers at once (its job still running), so that waiting requests leave
# threads for everything else (scripts/run serves 32 threads a process).
LONG_POLL_MAX_WAITERS = env.int("LONG_POLL_MAX_WAITERS", default=16)
# A job's own limit, past every call's deadline (a job may try a model's fallbacks in turn): the
# soft limit ends the job as failed, the hard one ends its process. Celery enforces both in the
# prefork pool only; in the threads pool scripts/run uses, the calls' deadlines are what end a job.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("JOB_TIME_LIMIT", default=3 * UPSTREAM_CALL_DEADLINE + 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# The OpenAI-compatible gateway (/v1): the largest request body it reads (images come inline, as
# data: URLs), and how long its calls' usage rows may wait in memory before they are written.
GATEWAY_MAX_BODY = env.int("GATEWAY_MAX_BODY", default=32 * 1024 * 1024)
# The largest body POST /api/v1/invocations reads: a transcription's 25 MB of audio is 33.4 MB in
# base64 (images come inline too). Everything else keeps Django's DATA_UPLOAD_MAX_MEMORY_SIZE
# (2.5 MB). A larger body is a JSON 413.
INVOCATION_MAX_BODY = env.int("INVOCATION_MAX_BODY", default=36 * 1024 * 1024)
GATEWAY_USAGE_FLUSH_SECONDS = env.float("GATEWAY_USAGE_FLUSH_SECONDS", default=0.5)

# --- REST API ---------------------------------------------------------------------------------
CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"  # JSON under /api/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.SessionTenantAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantPrincipal"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.FiniteJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model Provider Settings API",
    "DESCRIPTION": (
        "Configure model providers per workspace, check their credentials, pick default models and "
        "invoke them. Authenticate with `Authorization: Bearer <api key>` or a browser session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The API takes JSON: it documents no form bodies (DRF reads a form's "" as "not given").
    "PARSER_WHITELIST": ["config.parsers.FiniteJSONParser", "config.parsers.InlineMediaJSONParser"],
    # One name per enum, wherever it appears (else drf-spectacular names them by field).
    "ENUM_NAME_OVERRIDES": {
        "CheckStatusEnum": "providers.models.CheckStatus",
        "JobStatusEnum": "providers.models.JobStatus",
        "ProviderStatusEnum": "providers.selectors.PROVIDER_STATUSES",
        "ModelStatusEnum": "providers.selectors.MODEL_STATUSES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.document_errors",  # error responses, the providers' enum
    ],
}

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")  # json | text
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "config.log.RedactingJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "text": {
            "()": "config.log.RedactingTextFormatter",
            "fmt": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Provider catalog -------------------------------------------------------------------------
# The built-in manifests, then any directories of extra YAML manifests (e.g. another
# OpenAI-compatible provider): adding one needs no code.
PROVIDER_CATALOG_DIRS = [
    BASE_DIR / "providers" / "catalog",
    *env.list("PROVIDER_CATALOG_EXTRA_DIRS", default=[]),
]

# --- Product settings -------------------------------------------------------------------------
API_KEY_LAST_USED_RESOLUTION = env.int("API_KEY_LAST_USED_RESOLUTION", default=60)  # seconds
HEALTHCHECK_TIMEOUT = env.float("HEALTHCHECK_TIMEOUT", default=1.0)  # seconds per check
# Requests with this in their X-Healthz-Token header see /healthz's details (empty: none do).
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")

# --- E-mail (invitations to a workspace) ------------------------------------------------------
# Unset: the console backend when DEBUG (each e-mail is printed by the web process, so a developer
# can open the link), SMTP otherwise. Tests use Django's in-memory backend.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)  # TLS from the start, usually port 465
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # seconds: the invite page waits for it
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
# The file backend's folder (scripts/run uses it when no mail server is configured).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="") or str(DATA_DIR / "mail")
# An invitation's link works this many days; a workspace sends at most this many invitations
# (new or resent) an hour.
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=20)

# --- Brute-force limits (tenants/throttling.py) -----------------------------------------------
# A login is refused (429) for the rest of the window once an account, or a client address, has
# failed this many times in it; so is any API key from an address with this many failed keys.
LOGIN_FAILURES_PER_ACCOUNT = env.int("LOGIN_FAILURES_PER_ACCOUNT", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=20)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)  # seconds
API_KEY_FAILURES_PER_ADDRESS = env.int("API_KEY_FAILURES_PER_ADDRESS", default=20)
API_KEY_FAILURE_WINDOW = env.int("API_KEY_FAILURE_WINDOW", default=300)  # seconds
# The client's address is REMOTE_ADDR; behind N reverse proxies that each append to
# X-Forwarded-For, set N and it is the address the outermost of them saw.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Outbound calls (SSRF guard) --------------------------------------------------------------
# Every call to a model backend connects only to addresses this policy allows, checked after DNS
# (providers/runtime/netguard.py). Cloud metadata, link-local, multicast and the like are always
# refused; loopback and private networks are where self-hosted model servers live, so allowed
# unless an operator of a shared server says otherwise.
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=True)
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=True)
OUTBOUND_DENY_NETWORKS = env.list("OUTBOUND_DENY_NETWORKS", default=[])  # extra CIDRs refused
for _network in OUTBOUND_DENY_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"OUTBOUND_DENY_NETWORKS: {_exc}") from None

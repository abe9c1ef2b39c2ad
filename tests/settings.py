"""Test settings: the real settings, with fixed test keys unless the environment gives its own."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# A fixed Fernet key: tests must be repeatable; production keys come from the environment.
os.environ.setdefault("MASTER_KEYS", "Vp3xQQiyphcu1vjjKtlEVt1dzDNyGktFBlmXOzOoaHQ=")
os.environ.setdefault("LOG_FORMAT", "text")
# Tests speak plain http, as scripts/run serves: no redirect to https, cookies sent over http.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.secretsapp"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # tests serve static files without collectstatic
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not Django's in-memory default: the Celery worker thread needs its own connection
    # with real locking (an in-memory shared cache fails with "table is locked").
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}  # noqa: F405

"""Words of Django's own admin that its 简体中文 catalog lacks (the app list's table headings
added in Django 5.1, read by screen readers and by tests/e2e/test_i18n_pages.py). Listed here
so that `makemessages` keeps them in locale/zh_Hans, which Django reads before its own
catalogs. Nothing imports this module."""

from django.utils.translation import gettext_noop

DJANGO_ADMIN = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)

"""The WSGI application: the OpenAI-compatible gateway answers /v1 itself (see
invocations/gateway.py), Django everything else."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from invocations import gateway  # noqa: E402 - needs the apps loaded by the line above

application = gateway.mount(django_application)

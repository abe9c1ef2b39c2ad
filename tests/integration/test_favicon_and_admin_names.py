"""Small things a visitor notices: /favicon.ico answers with the site's icon, and the admin index
names every model in proper English plurals ("Load-balancing entries", not "entrys")."""

from __future__ import annotations

import re

import pytest
from django.apps import apps

pytestmark = pytest.mark.django_db


def test_favicon_redirects_to_an_svg_that_is_served(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("/providers/icons/openai_api_compatible.svg")
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert b"".join(icon.streaming_content).lstrip().startswith(b"<svg")


def test_the_admin_index_reads_in_plurals(admin_client) -> None:
    page = admin_client.get("/admin/").content.decode()
    for plural in ["Load-balancing entries", "Default models", "Model settings", "Custom models"]:
        assert f">{plural}<" in page, plural
    assert "entrys" not in page.lower()
    for model in apps.get_models():
        plural = str(model._meta.verbose_name_plural)
        # Django's default plural is the name + "s": never "ys" after a consonant, "ss", "xs"...
        assert not re.search(r"([^aeiou]ys|ss|xs|chs|shs)$", plural), (model.__name__, plural)

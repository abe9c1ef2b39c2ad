"""`manage.py check --deploy` is clean with the variables README.md's production section sets."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

# What the README's placeholders (<...>) stand for.
GENERATED = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "MASTER_KEYS": lambda: Fernet.generate_key().decode(),
    "HEALTHZ_TOKEN": lambda: secrets.token_urlsafe(32),
}


def readme_production_variables() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Production") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    found = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", block, re.MULTILINE))
    for name, value in found.items():
        if value.startswith("<"):
            found[name] = GENERATED[name]()
    return found


def test_check_deploy_is_clean_with_the_readme_production_variables(tmp_path) -> None:
    variables = readme_production_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "MASTER_KEYS", "ALLOWED_HOSTS"} <= variables.keys()
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATA_DIR": str(tmp_path),
        **variables,
    }
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout

#!/usr/bin/env python
import os
import sys

# Commands that only read the models and migrations: they neither sign nor decrypt, so on a
# machine without secrets (a fresh checkout, a CI lint step) they run with throwaway ones rather
# than stop at the settings.
NEEDS_NO_SECRETS = {"makemigrations", "showmigrations", "sqlmigrate"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in NEEDS_NO_SECRETS:
        import secrets

        from cryptography.fernet import Fernet

        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        os.environ.setdefault("MASTER_KEYS", Fernet.generate_key().decode())
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

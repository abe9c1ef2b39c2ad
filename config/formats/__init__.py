"""Date formats that replace Django's own for a language (settings.FORMAT_MODULE_PATH)."""

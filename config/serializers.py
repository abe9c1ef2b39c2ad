"""Serializer fields stricter than DRF's, so the API takes what its schema says: `Text` and
`DecimalText` take a JSON string only (DRF's CharField turns a number into text, and its
DecimalField reads one, where the schema says string)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class Text(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DecimalText(serializers.DecimalField):
    """A decimal given as a JSON string, as the schema (and every answer) writes it: a JSON
    number is refused rather than read through a float."""

    default_error_messages = {
        **serializers.DecimalField.default_error_messages,
        "not_text": 'Give the amount as a JSON string, such as "100.00".',
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)

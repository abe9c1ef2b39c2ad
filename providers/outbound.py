"""Where model backend calls may go: the address policy (SSRF guard) from this server's settings.

The guard itself is `providers/runtime/netguard.py` (pure); settings are read here, at each call,
never at import (tests and `override_settings` change them).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from providers.runtime import netguard


def policy() -> netguard.AddressPolicy:
    """Cloud metadata and other never-useful addresses are refused whatever the settings say;
    loopback and private networks (where self-hosted model servers live) as configured."""
    return netguard.AddressPolicy(
        allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK,
        allow_private=settings.OUTBOUND_ALLOW_PRIVATE,
        denied_networks=tuple(
            ipaddress.ip_network(network, strict=False)
            for network in settings.OUTBOUND_DENY_NETWORKS
        ),
    )

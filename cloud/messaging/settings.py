"""The messaging settings, declared once (name, default, help): read from the given
configuration, else ``$WICKET_HUB_<NAME>``. Pointing the hub at the sandbox gateway or a real
one, and at an SMTP server, is a change of these only (docs/messaging.md lists them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SETTINGS: dict[str, tuple[str, str]] = {
    "SMS_GATEWAY_URL": ("", "the SMS gateway's address (the sandbox: wicket-hub sms-sandbox); "
                            "unset, SMS messages wait"),
    "SMS_API_KEY": ("", "the key the hub sends to the gateway with (Authorization: Bearer)"),
    "SMS_RECEIPT_KEY": ("", "the key the gateway signs delivery receipts with (HMAC-SHA256); "
                            "unset, receipts are refused"),
    "WECHAT_GATEWAY_URL": ("", "where WeChat template messages go (default: the SMS gateway, "
                               "which the sandbox plays too)"),
    "SMTP_HOST": ("", "the SMTP server e-mail is sent through; unset, e-mail messages wait"),
    "SMTP_PORT": ("25", "its port"),
    "SMTP_USER": ("", "the user to log in as (no login when unset)"),
    "SMTP_PASSWORD": ("", "that user's password"),
    "SMTP_STARTTLS": ("0", "1: switch to TLS with STARTTLS before sending"),
    "SMTP_FROM": ("wicket@localhost", "the From address of the hub's e-mail"),
    "MESSAGING_TIMEOUT": ("10", "seconds to wait for a gateway or SMTP server"),
    "PUBLIC_URL": ("", "the hub's address as buyers reach it, for ticket links"),
}


def messaging_settings(config: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Each setting from ``config``, else ``$WICKET_HUB_<NAME>``, else its default."""
    return {name: str(config.get(name) or environ.get(f"WICKET_HUB_{name}") or default)
            for name, (default, _help) in SETTINGS.items()}

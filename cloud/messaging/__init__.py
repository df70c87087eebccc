"""Messaging: sending the outbox, channels, templates, send tasks and ticket links."""

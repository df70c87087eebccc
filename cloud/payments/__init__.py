"""Payments: the provider interface, its adapters (offline, WeChat Pay v3, Alipay), the rules
that start payments, take the providers' signed notifications, refund and settle, and the
payment sandbox that plays both online providers (docs/payments.md)."""

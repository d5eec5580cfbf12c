"""Payments through Stripe: checkout, signed webhooks, refunds and reconciliation (see docs/payments.md)."""

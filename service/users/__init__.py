"""Accounts: one user, several roles (`guest`, `host`)."""

"""Authentication and authorisation: password hashing, JWT bearer tokens, role and ownership guards."""

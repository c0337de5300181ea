"""Credentials (API keys, JWT bearer tokens), scopes, masking of personal data, audit."""

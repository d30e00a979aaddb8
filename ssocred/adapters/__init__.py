"""Adapters: each owns one external system (keyring, AWS services, files, locks, service managers)."""

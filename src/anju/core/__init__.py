"""Shared infrastructure: database, settings-derived services, crypto, validation."""

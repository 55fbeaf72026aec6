"""Accounts, sessions and who may see what."""

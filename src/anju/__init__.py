"""Anju (安居) — an open platform for smart safe communities (智慧平安社区)."""

__version__ = "0.1.0"

"""Perception: the canonical event, the ways in, the pipeline and the event store."""

"""Faces: encoder, galleries, recognition, strangers (issue #6)."""

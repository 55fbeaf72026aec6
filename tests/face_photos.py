"""Shared by the faces tests: the real photographs, their encodings (computed once per run),
and synthetic vectors for cluster logic (cheap, no dlib).

The photographs are looked for in ``ANJU_FACE_FIXTURES``, ``tests/fixtures/faces``, then the
shared fixtures folder beside the repository (``../shared/fixtures/faces``).
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SIM = "anju-sim-v1"  # the simulator's model name (dim 128)


def _fixture_dir() -> Path | None:
    for candidate in (
        os.environ.get("ANJU_FACE_FIXTURES", ""),
        str(REPO / "tests" / "fixtures" / "faces"),
        str(REPO.parent / "shared" / "fixtures" / "faces"),
    ):
        if candidate and (Path(candidate) / "obama" / "obama.jpg").is_file():
            return Path(candidate)
    return None


FIXTURES = _fixture_dir()
needs_photos = pytest.mark.skipif(
    FIXTURES is None, reason="face photographs not found (tests/fixtures/faces)"
)


def photo_path(name: str) -> Path:
    assert FIXTURES is not None
    return FIXTURES / name


def photo(name: str) -> bytes:
    return photo_path(name).read_bytes()


@cache
def encoding(name: str) -> list[float]:
    """The dlib encoding of the largest face of a fixture photo (once per test run)."""
    from anju.faces.encoder import dlib_encoder

    found = dlib_encoder().faces(photo(name))
    best = max(found, key=lambda f: (f.box.bottom - f.box.top) * (f.box.right - f.box.left))
    return [float(x) for x in best.vector]


def blank_jpeg() -> bytes:
    """A grey picture with no face in it."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 120), (128, 128, 128)).save(out, format="JPEG")
    return out.getvalue()


def face(seed: int) -> np.ndarray:
    """A synthetic person's face: a random unit vector (far from any other: ~1.4 apart)."""
    v = np.random.default_rng(seed).normal(size=128)
    return (v / np.linalg.norm(v)).astype(np.float32)


def sighting(base: np.ndarray, seed: int, spread: float = 0.15) -> list[float]:
    """``base`` seen once more: moved ``spread`` away in a random direction."""
    noise = np.random.default_rng(10_000 + seed).normal(size=len(base))
    noise = noise / np.linalg.norm(noise) * spread
    return [float(x) for x in base + noise]

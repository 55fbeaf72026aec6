"""The blob store: images in a folder, addressed by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.jpg$")


class FolderBlobs:
    """Content-addressed files under one folder (``ab/cd/<sha256>.jpg``); writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"
        path = self.root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return key

    def path(self, key: str) -> Path | None:
        """Where a key's file lives; None for anything not shaped like a key (no ``..``)."""
        return self.root / key if KEY.match(key) else None

    def get(self, key: str) -> bytes | None:
        """A blob's bytes, or None when the key is malformed or its file is gone."""
        path = self.path(key)
        try:
            return path.read_bytes() if path is not None else None
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> int:
        """Remove a blob; the bytes freed (0 when it was not there)."""
        path = self.path(key)
        if path is None:
            return 0
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

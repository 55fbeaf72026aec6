"""The blob store: images in a folder, addressed by the SHA-256 of their bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


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

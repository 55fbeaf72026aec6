"""Face galleries: 1:N search of a probe encoding among owners' enrolled encodings.

Owners are strings naming what a vector belongs to: ``"p:<person_id>"`` (a resident),
``"w:<watch_entry_id>"`` (a watchlist entry), ``"s:<stranger_cluster_id>"`` (a stranger).
An owner may hold several vectors; a search answers each owner once, with its best distance.

:class:`Gallery` is exact (numpy, one matrix product per probe) and is the default up to a few
hundred thousand vectors (see ``docs/faces.md`` for its latency at 10k–1M). :class:`AnnGallery`
answers from a usearch HNSW index instead, for larger galleries; its recall against the exact
search is measured by ``bench/faces.py``. Both are safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Match:
    """One owner's best match: Euclidean distance between the probe and its nearest vector."""

    owner: str
    distance: float


def _vector(value: Any, dim: int) -> Vector:
    """``value`` as a float32 vector of ``dim`` finite numbers, or ValueError."""
    try:
        v = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a vector of numbers: {exc}") from None
    if v.shape != (dim,):
        raise ValueError(f"vector of shape {v.shape}, expected ({dim},)")
    if not np.all(np.isfinite(v)):
        raise ValueError("vector holds a NaN or an infinity")
    return v


def _kind(owner: str) -> str:
    """The owner's kind prefix: ``"p:"`` of ``"p:12"`` (the whole string if it has no colon)."""
    head, colon, _ = owner.partition(":")
    return head + colon


class Gallery:
    """Exact search: a float32 matrix growing by doubling, squared distances by matrix product."""

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim
        self._lock = threading.RLock()
        self._size = 0
        self._matrix = np.zeros((16, dim), dtype=np.float32)
        self._norms = np.zeros(16, dtype=np.float32)  # squared norms of the rows
        self._codes = np.zeros(16, dtype=np.int64)  # row → owner code
        self._owner_of: list[str | None] = []  # code → owner (None once freed)
        self._free: list[int] = []  # codes to reuse
        self._code: dict[str, int] = {}  # owner → code
        self._rows: dict[int, list[int]] = {}  # code → its rows
        self._prefix_luts: dict[str, npt.NDArray[np.bool_]] = {}  # prefix → code mask

    def __len__(self) -> int:
        return self._size

    def owners(self) -> set[str]:
        """Every owner holding at least one vector."""
        with self._lock:
            return set(self._code)

    def add(self, owner: str, vector: Any) -> None:
        """Add one vector for ``owner`` (an owner may hold several)."""
        v = _vector(vector, self.dim)
        with self._lock:
            code = self._code.get(owner)
            if code is None:
                code = self._new_code(owner)
            if self._size == len(self._matrix):
                self._grow()
            row = self._size
            self._matrix[row] = v
            self._norms[row] = float(np.dot(v, v))
            self._codes[row] = code
            self._rows[code].append(row)
            self._size += 1

    def add_many(self, owners: Iterable[str], vectors: Any) -> None:
        """Add vectors in bulk (``vectors`` is ``(n, dim)``, one owner per row)."""
        owners = list(owners)
        matrix = _matrix(vectors, len(owners), self.dim)
        with self._lock:
            while self._size + len(owners) > len(self._matrix):
                self._grow()
            start = self._size
            codes = np.empty(len(owners), dtype=np.int64)
            for i, owner in enumerate(owners):
                code = self._code.get(owner)
                if code is None:
                    code = self._new_code(owner)
                codes[i] = code
                self._rows[code].append(start + i)
            end = start + len(owners)
            self._matrix[start:end] = matrix
            self._norms[start:end] = np.einsum("ij,ij->i", matrix, matrix)
            self._codes[start:end] = codes
            self._size = end

    def remove(self, owner: str) -> int:
        """Remove every vector of ``owner``; returns how many there were."""
        with self._lock:
            code = self._code.pop(owner, None)
            if code is None:
                return 0
            rows = sorted(self._rows.pop(code), reverse=True)
            for row in rows:  # highest first, so a moved last row is never one of ours
                last = self._size - 1
                if row != last:
                    moved = int(self._codes[last])
                    self._matrix[row] = self._matrix[last]
                    self._norms[row] = self._norms[last]
                    self._codes[row] = moved
                    moved_rows = self._rows[moved]
                    moved_rows[moved_rows.index(last)] = row
                self._size = last
            self._owner_of[code] = None
            self._free.append(code)
            for lut in self._prefix_luts.values():
                lut[code] = False
            return len(rows)

    def search(
        self,
        probe: Any,
        k: int = 5,
        *,
        prefix: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Match]:
        """The ``k`` owners nearest to ``probe``, each with its best distance, nearest first.

        ``prefix`` limits the search to owners starting with it (``"p:"``, ``"w:"``, ``"s:"``);
        ``exclude`` leaves those owners out."""
        p = _vector(probe, self.dim)
        if k <= 0:
            return []
        with self._lock:
            n = self._size
            if n == 0:
                return []
            matrix, codes = self._matrix[:n], self._codes[:n]
            # |x - p|² = |x|² - 2 x·p + |p|²; |p|² is the same for every row, added at the end.
            d2 = self._norms[:n] - 2.0 * (matrix @ p)
            allowed = self._allowed(prefix, exclude)
            if allowed is not None:
                d2 = np.where(allowed[codes], d2, np.inf)
            best = self._best_rows(d2, codes, k)
            # Exact distances for the few answers (the matrix form loses a little precision).
            found = [
                (float(np.linalg.norm(matrix[row].astype(np.float64) - p)), int(codes[row]))
                for row in best
            ]
            found.sort()
            return [Match(self._owner_of[c] or "", d) for d, c in found]

    # -- internals ---------------------------------------------------------------------------

    def _new_code(self, owner: str) -> int:
        if self._free:
            code = self._free.pop()
            self._owner_of[code] = owner
        else:
            code = len(self._owner_of)
            self._owner_of.append(owner)
            for prefix, lut in list(self._prefix_luts.items()):
                if code >= len(lut):
                    lut = self._prefix_luts[prefix] = np.concatenate(
                        [lut, np.zeros(max(len(lut), 16), dtype=np.bool_)]
                    )
        for prefix, lut in self._prefix_luts.items():
            lut[code] = owner.startswith(prefix)
        self._code[owner] = code
        self._rows[code] = []
        return code

    def _grow(self) -> None:
        capacity = len(self._matrix) * 2
        matrix = np.zeros((capacity, self.dim), dtype=np.float32)
        matrix[: self._size] = self._matrix[: self._size]
        norms = np.zeros(capacity, dtype=np.float32)
        norms[: self._size] = self._norms[: self._size]
        codes = np.zeros(capacity, dtype=np.int64)
        codes[: self._size] = self._codes[: self._size]
        self._matrix, self._norms, self._codes = matrix, norms, codes

    def _allowed(
        self, prefix: str | None, exclude: Collection[str]
    ) -> npt.NDArray[np.bool_] | None:
        """A mask over owner codes, or None when every owner is allowed."""
        if prefix is None and not exclude:
            return None
        ncodes = len(self._owner_of)
        if prefix is None:
            mask = np.ones(ncodes, dtype=np.bool_)
        else:
            lut = self._prefix_luts.get(prefix)
            if lut is None:  # built once per prefix, then kept up to date by _new_code
                lut = np.array(
                    [o is not None and o.startswith(prefix) for o in self._owner_of] + [False] * 16,
                    dtype=np.bool_,
                )
                self._prefix_luts[prefix] = lut
            mask = lut[:ncodes].copy() if exclude else lut[:ncodes]
        for owner in exclude:
            code = self._code.get(owner)
            if code is not None:
                mask[code] = False
        return mask

    def _best_rows(
        self, d2: npt.NDArray[np.float32], codes: npt.NDArray[np.int64], k: int
    ) -> list[int]:
        """Rows of the best vector of each of the ``k`` nearest owners (allowed ones only)."""
        n = len(d2)
        want = min(n, k * 4)
        while True:
            if want < n:
                part = np.argpartition(d2, want - 1)[:want]
                order = part[np.argsort(d2[part], kind="stable")]
            else:
                order = np.argsort(d2, kind="stable")
            rows: list[int] = []
            seen: set[int] = set()
            for row in order:
                if not np.isfinite(d2[row]):
                    return rows
                code = int(codes[row])
                if code in seen:
                    continue
                seen.add(code)
                rows.append(int(row))
                if len(rows) == k:
                    return rows
            if want >= n:
                return rows
            want = min(n, want * 4)  # owners with many vectors filled the first slice


class AnnGallery:
    """Approximate search through a usearch HNSW index (squared L2), one index per owner kind.

    For galleries beyond a few hundred thousand vectors, where the exact product costs tens
    of milliseconds a probe. Results are approximate: ``bench/faces.py`` measures recall@1
    against :class:`Gallery`. Keeping one index per kind (``"p:"``, ``"w:"``, ``"s:"``) makes a
    prefix search as good as an unfiltered one; ``exclude`` widens the search until enough
    owners remain."""

    def __init__(
        self,
        dim: int,
        *,
        connectivity: int = 16,
        expansion_add: int = 64,
        expansion_search: int = 256,
        build_threads: int = 0,
    ) -> None:
        # build_threads 0 builds on every core; 1 builds the same graph every time (tests).
        # bench/faces.py on face-like synthetic data: expansion_search 256 gives ~92 %
        # recall@1 at 100k in ~1.4 ms (59 % at 1M); larger values trade latency for recall.
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim
        self._options = (connectivity, expansion_add)
        self._build_threads = build_threads
        self._expansion_search = expansion_search
        self._lock = threading.RLock()
        self._indexes: dict[str, Any] = {}  # kind → usearch Index
        self._next_key = 0
        self._owner_of: dict[int, str] = {}  # key → owner
        self._keys: dict[str, list[int]] = {}  # owner → keys

    @property
    def expansion_search(self) -> int:
        """How wide each search looks (usearch's ``ef``): recall against latency."""
        return self._expansion_search

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        with self._lock:
            self._expansion_search = value
            for index in self._indexes.values():
                index.expansion_search = value

    def __len__(self) -> int:
        return len(self._owner_of)

    def owners(self) -> set[str]:
        """Every owner holding at least one vector."""
        with self._lock:
            return set(self._keys)

    def _index(self, kind: str) -> Any:
        index = self._indexes.get(kind)
        if index is None:
            from usearch.index import Index

            connectivity, expansion_add = self._options
            index = Index(
                ndim=self.dim,
                metric="l2sq",
                dtype="f32",
                connectivity=connectivity,
                expansion_add=expansion_add,
                expansion_search=self._expansion_search,
            )
            self._indexes[kind] = index
        return index

    def add(self, owner: str, vector: Any) -> None:
        """Add one vector for ``owner``."""
        self.add_many([owner], _vector(vector, self.dim)[None, :])

    def add_many(self, owners: Iterable[str], vectors: Any) -> None:
        """Add vectors in bulk (``vectors`` is ``(n, dim)``, one owner per row)."""
        owners = list(owners)
        matrix = _matrix(vectors, len(owners), self.dim)
        with self._lock:
            keys = np.arange(self._next_key, self._next_key + len(owners), dtype=np.uint64)
            self._next_key += len(owners)
            by_kind: dict[str, list[int]] = {}
            for i, owner in enumerate(owners):
                key = int(keys[i])
                self._owner_of[key] = owner
                self._keys.setdefault(owner, []).append(key)
                by_kind.setdefault(_kind(owner), []).append(i)
            for kind, rows in by_kind.items():
                index = self._index(kind)
                index.add(keys[rows], matrix[rows], threads=self._build_threads)

    def remove(self, owner: str) -> int:
        """Remove every vector of ``owner``; returns how many there were."""
        with self._lock:
            keys = self._keys.pop(owner, None)
            if not keys:
                return 0
            index = self._indexes[_kind(owner)]
            for key in keys:
                index.remove(key)
                del self._owner_of[key]
            return len(keys)

    def search(
        self,
        probe: Any,
        k: int = 5,
        *,
        prefix: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Match]:
        """Like :meth:`Gallery.search`, approximately."""
        p = _vector(probe, self.dim)
        if k <= 0:
            return []
        with self._lock:
            kinds = [
                kind
                for kind in self._indexes
                if prefix is None or kind.startswith(prefix) or prefix.startswith(kind)
            ]
            excluded = set(exclude)
            best: dict[str, float] = {}
            for kind in kinds:
                index = self._indexes[kind]
                size = len(index)
                if size == 0:
                    continue
                # Room for excluded owners' vectors and owners holding several vectors.
                count = min(size, k * 4 + sum(len(self._keys.get(o, ())) for o in excluded))
                while True:
                    matches = index.search(p, count)
                    found: dict[str, float] = {}
                    for key, d2 in zip(matches.keys, matches.distances, strict=True):
                        owner = self._owner_of.get(int(key))
                        if owner is None or owner in excluded:
                            continue
                        if prefix is not None and not owner.startswith(prefix):
                            continue
                        if owner not in found or d2 < found[owner]:
                            found[owner] = float(d2)
                    if len(found) >= k or count >= size:
                        break
                    count = min(size, count * 4)
                for owner, d2 in found.items():
                    if owner not in best or d2 < best[owner]:
                        best[owner] = d2
            ranked = sorted(best.items(), key=lambda item: item[1])[:k]
            return [Match(owner, float(np.sqrt(max(d2, 0.0)))) for owner, d2 in ranked]


def _matrix(vectors: Any, rows: int, dim: int) -> Any:
    """``vectors`` as a contiguous float32 ``(rows, dim)`` matrix of finite values."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape != (rows, dim):
        raise ValueError(f"matrix of shape {matrix.shape}, expected ({rows}, {dim})")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("vector holds a NaN or an infinity")
    return matrix

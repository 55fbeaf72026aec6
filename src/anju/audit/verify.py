"""Checking the hash chain: walk the log in id order and name the first broken link.

Each row must (1) have the id after the previous row's (ids are contiguous, so a gap is a
deleted row), (2) carry the previous row's hash as ``prev_hash`` (the genesis value for
the first), and (3) hash, from its own stored fields, to its ``hash``. The walk reads the
log in keyset batches, so memory stays flat however long the log is.

A chain proves that nothing *before* its head was changed. To notice rows cut from the
end, or a tail rewritten as a whole, compare the head (id and hash, which the check
prints) with a copy kept elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from anju.audit.service import GENESIS_HASH, audit_table, chain_hash

DEFAULT_BATCH = 2000


class Problem(enum.StrEnum):
    """Why a row breaks the chain."""

    ROW_MISSING = "row_missing"  # an id gap: rows before this one were deleted
    LINK_BROKEN = "link_broken"  # prev_hash is not the previous row's hash
    CONTENT_CHANGED = "content_changed"  # the row's fields no longer give its hash


@dataclass(frozen=True)
class Verification:
    """The outcome of a check: how far it got, the head, and the first broken row if any."""

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str | None
    broken_id: int | None = None
    problem: Problem | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "broken_id": self.broken_id,
            "problem": None if self.problem is None else self.problem.value,
            "message": self.message,
        }


def count(conn: Connection) -> int:
    """How many rows the log holds."""
    return int(conn.scalar(select(func.count()).select_from(audit_table)) or 0)


def verify_chain(
    conn: Connection,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Check the whole chain; ``progress`` is called with the rows checked per batch."""
    expected_id, prev_hash = 1, GENESIS_HASH
    checked = 0
    last_id: int | None = None
    while True:
        stmt = select(audit_table).order_by(audit_table.c.id).limit(batch_size)
        if last_id is not None:
            stmt = stmt.where(audit_table.c.id > last_id)
        batch = conn.execute(stmt).mappings().all()
        if not batch:
            break
        for row in batch:
            broken = _check(row, expected_id, prev_hash)
            if broken is not None:
                problem, message = broken
                return Verification(
                    ok=False,
                    checked=checked,
                    head_id=last_id,
                    head_hash=prev_hash if last_id is not None else None,
                    broken_id=row["id"],
                    problem=problem,
                    message=message,
                )
            checked += 1
            last_id, prev_hash = row["id"], row["hash"]
            expected_id = row["id"] + 1
        if progress is not None:
            progress(len(batch))
    return Verification(
        ok=True,
        checked=checked,
        head_id=last_id,
        head_hash=prev_hash if last_id is not None else None,
        message=f"{checked} row(s) checked, chain intact",
    )


def _check(row: Any, expected_id: int, prev_hash: str) -> tuple[Problem, str] | None:
    row_id = row["id"]
    if row_id != expected_id:
        gap = f"{expected_id}" if row_id == expected_id + 1 else f"{expected_id}–{row_id - 1}"
        return Problem.ROW_MISSING, f"row {row_id}: row(s) {gap} before it are missing"
    if row["prev_hash"] != prev_hash:
        return (
            Problem.LINK_BROKEN,
            f"row {row_id}: its link does not match the hash of row {row_id - 1}",
        )
    if chain_hash(row["prev_hash"], row) != row["hash"]:
        return Problem.CONTENT_CHANGED, f"row {row_id}: its content was changed after writing"
    return None

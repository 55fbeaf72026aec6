"""Watchlists (重点人员 and controlled lists, 布控): who or what the key-person and
controlled-list models look for.

An entry applies to the communities under its organisation unit, matches by registry person,
ID-number hash, card, plate (or plate prefix, e.g. a region), MAC or face, and may expire.
Key-person entries are police-only; controlled-list entries may be shared with property.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from anju.core.crypto import FieldCipher
from anju.core.db import Base, BigId, IdMixin, TimestampMixin
from anju.core.errors import ValidationFailed
from anju.org.models import enum_column


class WatchList(enum.StrEnum):
    KEY_PERSON = "key_person"  # 重点人员
    CONTROLLED = "controlled"  # 布控名单 (wanted, stolen vehicles, epidemic areas …)


class MatchType(enum.StrEnum):
    PERSON = "person"  # a registry person id
    ID_HASH = "id_hash"  # the keyed hash of an ID number (the number itself is not kept)
    CARD = "card"
    PLATE = "plate"
    PLATE_PREFIX = "plate_prefix"  # e.g. "鲁L" or "京"
    MAC = "mac"
    FACE = "face"  # a face id / cluster once faces land


class WatchEntry(IdMixin, TimestampMixin, Base):
    """One watched subject on one list, with why and until when."""

    __tablename__ = "watchlist_entries"

    org_unit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), index=True
    )
    list_kind: Mapped[WatchList] = mapped_column(enum_column(WatchList, 16))
    category: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200))
    match_type: Mapped[MatchType] = mapped_column(enum_column(MatchType, 16))
    match_value: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    police_only: Mapped[bool] = mapped_column(Boolean, default=True)


ID_CONTEXT = "id_number"  # as the registry hashes them


def add_entry(
    session: Session,
    *,
    org_unit_id: int,
    list_kind: WatchList,
    category: str,
    reason: str,
    match_type: MatchType,
    value: str,
    cipher: FieldCipher | None = None,
    owner_id: int | None = None,
    expires_at: dt.datetime | None = None,
) -> WatchEntry:
    """Add an entry; an ID number is stored only as its lookup hash. Key-person entries are
    always police-only."""
    value = value.strip()
    if not value:
        raise ValidationFailed.one("value", "is required")
    if not category.strip():
        raise ValidationFailed.one("category", "is required")
    if match_type is MatchType.ID_HASH:
        if cipher is None:
            raise ValidationFailed.one("value", "an ID number needs the node's cipher")
        value = cipher.lookup_hash(value.upper(), ID_CONTEXT)
    elif match_type in (MatchType.PLATE, MatchType.PLATE_PREFIX, MatchType.MAC):
        value = (
            value.upper().replace(" ", "").replace("-", ":" if match_type is MatchType.MAC else "")
        )
    elif match_type is MatchType.PERSON and not value.isdigit():
        raise ValidationFailed.one("value", "a person is matched by registry id")
    entry = WatchEntry(
        org_unit_id=org_unit_id,
        list_kind=list_kind,
        category=category.strip(),
        reason=reason.strip(),
        match_type=match_type,
        match_value=value,
        owner_id=owner_id,
        expires_at=expires_at,
        police_only=list_kind is WatchList.KEY_PERSON,
    )
    session.add(entry)
    session.flush()
    return entry

"""Tables of face recognition: templates (sealed encodings), stranger clusters, "not this
person" feedback, the probes of recognised events and the gallery generation counters.

An encoding is biometric data: ``face_templates.vector_enc`` and ``face_rejections.vector_enc``
hold only AES-GCM ciphertexts sealed with the node's cipher (context ``"face"``); the audit
log redacts them (binary columns) and no export writes them. A template belongs to one owner:
a registered person (``owner_kind="person"``, ``owner_id`` the person id), a watchlist entry
(``"watch"``, the entry id; ``community_id`` NULL — the entry's organisation unit scopes it) or
a stranger cluster (``"stranger"``, the cluster id).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from anju.core.db import Base, BigId, IdMixin, TimestampMixin, utcnow


class OwnerKind(enum.StrEnum):
    PERSON = "person"  # a registered person (registration photos, linked captures)
    WATCH = "watch"  # a watchlist entry (key person, wanted)
    STRANGER = "stranger"  # a stranger cluster's representative encodings


class Source(enum.StrEnum):
    REGISTRATION = "registration"  # an uploaded registration photo (or the CLI)
    CAPTURE = "capture"  # a capture event's face (stranger representatives)
    DEVICE = "device"  # a vector a device computed (its model name kept with it)
    WATCHLIST = "watchlist"  # a photo of a watchlist entry


class FaceTemplate(IdMixin, Base):
    """人脸模板 — one sealed face encoding of one owner, with the model that made it."""

    __tablename__ = "face_templates"
    __table_args__ = (
        Index("ix_face_templates_owner", "owner_kind", "owner_id"),
        Index("ix_face_templates_community_model", "community_id", "model"),
    )

    community_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT"), default=None
    )
    owner_kind: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int] = mapped_column(BigId)
    model: Mapped[str] = mapped_column(String(40))
    vector_enc: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16))
    image: Mapped[str | None] = mapped_column(String(100), default=None)  # blob key
    event_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the capture it came from
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StrangerCluster(IdMixin, TimestampMixin, Base):
    """陌生人 — an unknown face seen again and again under one lasting anonymous code."""

    __tablename__ = "stranger_clusters"
    __table_args__ = (Index("ix_stranger_clusters_community_last", "community_id", "last_seen"),)

    community_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="RESTRICT")
    )
    code: Mapped[str] = mapped_column(String(20), unique=True)  # S-YYYYMMDD-NNNN
    first_seen: Mapped[dt.datetime] = mapped_column()
    last_seen: Mapped[dt.datetime] = mapped_column()
    sightings: Mapped[int] = mapped_column(Integer, default=0)
    # Linked to a registered person: the cluster's faces now resolve to them.
    person_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("persons.id", ondelete="SET NULL"), default=None
    )
    # Merged into another cluster: kept so old codes still resolve.
    merged_into_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stranger_clusters.id", ondelete="SET NULL"), default=None
    )


class FaceRejection(IdMixin, Base):
    """不是此人 — "this face is not that owner": a later probe near it never matches them."""

    __tablename__ = "face_rejections"
    __table_args__ = (Index("ix_face_rejections_community_model", "community_id", "model"),)

    community_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="CASCADE"), default=None
    )
    owner: Mapped[str] = mapped_column(String(24))  # gallery owner: "p:12", "s:34", "w:5"
    model: Mapped[str] = mapped_column(String(40))
    vector_enc: Mapped[bytes] = mapped_column(LargeBinary)
    event_id: Mapped[int | None] = mapped_column(BigId, default=None)
    reason: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FaceProbe(IdMixin, Base):
    """The sealed encoding one stored face event was recognised by: what "not this person"
    and a split need to remember the face (the event itself keeps no vector). Kept as long
    as the event's image would be (``anju retention run``)."""

    __tablename__ = "face_probes"

    event_id: Mapped[int] = mapped_column(BigId, index=True)  # no foreign key: events partition
    community_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(40))
    vector_enc: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[dt.datetime] = mapped_column(index=True)


class FaceGeneration(Base):
    """A counter per gallery scope (``"c:<community id>"``, ``"watch"``) bumped on every
    change of its templates or rejections: a process holding a gallery in memory reloads
    it when the counter moved."""

    __tablename__ = "face_generations"

    scope: Mapped[str] = mapped_column(String(24), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)

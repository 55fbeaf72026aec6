"""Retention of the event store: images per kind, event rows after a period.

Images (faces, vehicle captures) are personal data and are kept only as long as their
kind's retention (``ANJU_IMAGE_RETENTION_DAYS``, overridden per kind by
``ANJU_IMAGE_RETENTION_BY_KIND``). :func:`run` clears the ``image`` of older events and
deletes the blob files no event within retention still shows (blobs are content-addressed:
two events may show one file). When ``ANJU_EVENT_RETENTION_DAYS`` is set, older event rows
are deleted too, by :func:`delete_events_before` alone, so that PostgreSQL can later drop
whole monthly partitions instead. Faces: the sealed probe kept with a recognised face event
goes with the event's image, and stranger clusters not seen for
``ANJU_FACE_STRANGER_RETENTION_DAYS`` go with their encodings (:mod:`anju.faces.service`).

Work goes in batches, each its own transaction; files are deleted inside the transaction
that clears their references, before it commits (a failed commit leaves a reference to a
missing file, which the next run clears; the other order could leave a face on disk past
its retention).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, not_, or_, select, text, update
from sqlalchemy.orm import Session

from anju.audit import service as audit
from anju.core.scope import Actor
from anju.events import partitions
from anju.events.blobs import FolderBlobs
from anju.events.models import StoredEvent

log = logging.getLogger(__name__)

BATCH = 1000
ACTOR = Actor.system("retention")


@dataclass(frozen=True)
class Policy:
    """How long images (per kind) and event rows are kept, in days."""

    image_days: int
    image_days_by_kind: Mapping[str, int] = field(default_factory=dict)
    event_days: int | None = None
    stranger_days: int | None = None  # stranger clusters not seen for this long (None: kept)

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            image_days=settings.image_retention_days,
            image_days_by_kind=dict(settings.image_retention_by_kind),
            event_days=settings.event_retention_days,
            stranger_days=settings.face_stranger_retention_days,
        )

    def event_cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """Event rows before this are deleted (None: kept for ever)."""
        return None if self.event_days is None else now - dt.timedelta(days=self.event_days)

    def image_cutoffs(self, now: dt.datetime) -> tuple[dict[str, dt.datetime], dt.datetime]:
        """The cutoff of each kind named, and of all others. A row about to be deleted takes
        its image with it, so the event cutoff wins where it is later."""
        rows = self.event_cutoff(now)

        def cutoff(days: int) -> dt.datetime:
            moment = now - dt.timedelta(days=days)
            return max(moment, rows) if rows is not None else moment

        named = {kind: cutoff(days) for kind, days in self.image_days_by_kind.items()}
        return named, cutoff(self.image_days)

    def expired_image(self, now: dt.datetime) -> ColumnElement[bool]:
        """Events whose image is past its kind's retention (whether or not it has one)."""
        named, default = self.image_cutoffs(now)
        clauses = [
            and_(StoredEvent.kind == kind, StoredEvent.at < cut) for kind, cut in named.items()
        ]
        others = StoredEvent.at < default
        if named:
            others = and_(StoredEvent.kind.not_in(list(named)), others)
        # The overall bound lets PostgreSQL skip the partitions of recent months.
        latest = max([default, *named.values()])
        return and_(StoredEvent.at < latest, or_(others, *clauses))


@dataclass
class Report:
    """What a run purged (or, dry, would purge)."""

    dry_run: bool
    images: Counter[str] = field(default_factory=Counter)  # events whose image went, per kind
    files: int = 0  # blob files deleted
    bytes_freed: int = 0
    events: Counter[str] = field(default_factory=Counter)  # event rows deleted, per kind
    strangers: int = 0  # stranger clusters deleted (with their encodings)
    face_probes: int = 0  # sealed face encodings of events whose image went

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "images": dict(sorted(self.images.items())),
            "images_total": sum(self.images.values()),
            "files": self.files,
            "bytes_freed": self.bytes_freed,
            "events": dict(sorted(self.events.items())),
            "events_total": sum(self.events.values()),
            "strangers": self.strangers,
            "face_probes": self.face_probes,
        }


def run(node: Any, policy: Policy, now: dt.datetime, *, dry_run: bool = False) -> Report:
    """Purge expired images and (when a period is set) expired event rows; report both.

    A purge that removed anything is written to the audit log; a dry run changes nothing.
    """
    report = Report(dry_run=dry_run)
    blobs = FolderBlobs(node.settings.blob_dir)
    _purge_images(node, blobs, policy, now, report)
    _purge_faces(node, policy, now, report)
    cutoff = policy.event_cutoff(now)
    if cutoff is not None and not dry_run:
        # PostgreSQL: whole months past the cutoff go as partitions (no row-by-row delete,
        # no bloat); what is left of the month that straddles it goes row by row below.
        with node.unit_of_work(ACTOR) as ctx:
            report.events.update(drop_months_before(ctx.session, cutoff, now))
    if cutoff is not None:
        while True:
            with node.unit_of_work(ACTOR) as ctx:
                deleted = (
                    _count_events_before(ctx.session, cutoff)
                    if dry_run
                    else delete_events_before(ctx.session, cutoff, BATCH)
                )
            report.events.update(deleted)
            if dry_run or sum(deleted.values()) < BATCH:
                break
    if not dry_run and (report.images or report.events or report.strangers):
        with node.unit_of_work(ACTOR) as ctx:
            audit.record(
                ctx.session,
                "retention.purge",
                entity="events",
                detail={
                    **report.as_dict(),
                    "image_days": policy.image_days,
                    "image_days_by_kind": dict(policy.image_days_by_kind),
                    "event_days": policy.event_days,
                    "stranger_days": policy.stranger_days,
                },
            )
    log.info(
        "retention%s: %d image(s), %d file(s), %d bytes, %d event row(s), %d stranger(s)",
        " (dry run)" if dry_run else "",
        sum(report.images.values()),
        report.files,
        report.bytes_freed,
        sum(report.events.values()),
        report.strangers,
    )
    return report


def _purge_images(
    node: Any, blobs: FolderBlobs, policy: Policy, now: dt.datetime, report: Report
) -> None:
    """Clear expired events' images batch by batch; delete files no kept event shows."""
    expired = policy.expired_image(now)
    counted: set[str] = set()  # a dry run sees each file once, not once per batch
    after = 0
    while True:
        with node.unit_of_work(ACTOR) as ctx:
            session = ctx.session
            rows = session.execute(
                select(StoredEvent.id, StoredEvent.kind, StoredEvent.image)
                .where(StoredEvent.image.is_not(None), StoredEvent.id > after, expired)
                .order_by(StoredEvent.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return
            after = rows[-1].id
            report.images.update(r.kind for r in rows)
            keys = {r.image for r in rows}
            if not report.dry_run:
                session.execute(
                    update(StoredEvent)
                    .where(StoredEvent.id.in_([r.id for r in rows]))
                    .values(image=None)
                )
            shown = set(
                session.scalars(
                    select(StoredEvent.image)
                    .where(StoredEvent.image.in_(keys), not_(expired))
                    .distinct()
                )
            )
            for key in sorted(keys - shown):
                if report.dry_run:
                    path = blobs.path(key)
                    if key not in counted and path is not None and path.exists():
                        counted.add(key)
                        report.files += 1
                        report.bytes_freed += path.stat().st_size
                    continue
                freed = blobs.delete(key)
                if freed:
                    report.files += 1
                    report.bytes_freed += freed


def _purge_faces(node: Any, policy: Policy, now: dt.datetime, report: Report) -> None:
    """Sealed face probes past their event kind's image retention; stranger clusters not
    seen within ``stranger_days``."""
    from anju.faces import service as faces
    from anju.faces.models import FaceProbe

    named, default = policy.image_cutoffs(now)
    clauses = [and_(FaceProbe.kind == kind, FaceProbe.at < cut) for kind, cut in named.items()]
    others = FaceProbe.at < default
    if named:
        others = and_(FaceProbe.kind.not_in(list(named)), others)
    with node.unit_of_work(ACTOR) as ctx:
        report.face_probes = faces.purge_probes(
            ctx.session, or_(others, *clauses), dry_run=report.dry_run
        )
        if policy.stranger_days is not None:
            cutoff = now - dt.timedelta(days=policy.stranger_days)
            report.strangers = faces.purge_strangers(ctx.session, cutoff, dry_run=report.dry_run)


def drop_months_before(session: Session, cutoff: dt.datetime, now: dt.datetime) -> Counter[str]:
    """Drop the monthly partitions that ended by ``cutoff`` (PostgreSQL; nothing on SQLite);
    the count per kind of the rows they held. Also makes the coming months' partitions, so a
    node that runs for months without a restart keeps inserting into its own months."""
    conn = session.connection()
    partitions.ensure_partitions(conn, now)
    if not partitions.is_partitioned(conn):
        return Counter()
    whole = partitions.months_ended_by(conn, cutoff)
    counts: Counter[str] = Counter()
    for name in whole:
        rows = conn.execute(text(f"SELECT kind, count(*) FROM {name} GROUP BY kind"))
        counts.update({kind: int(n) for kind, n in rows})
    # drop_partitions_before also clears DEFAULT's rows older than the cutoff.
    strays = conn.execute(
        text(f"SELECT kind, count(*) FROM {partitions.DEFAULT} WHERE at < :cutoff GROUP BY kind"),
        {"cutoff": cutoff},
    )
    counts.update({kind: int(n) for kind, n in strays})
    partitions.drop_partitions_before(conn, cutoff)
    return counts


def delete_events_before(session: Session, cutoff: dt.datetime, limit: int) -> Counter[str]:
    """Delete up to ``limit`` event rows older than ``cutoff``; the count per kind.

    The one place rows leave the store: where events are partitioned by month, whole
    months can be dropped here instead (``anju.events.partitions``).
    """
    rows = session.execute(
        select(StoredEvent.id, StoredEvent.kind).where(StoredEvent.at < cutoff).limit(limit)
    ).all()
    if rows:
        ids = [r.id for r in rows]
        session.execute(delete(StoredEvent).where(StoredEvent.at < cutoff, StoredEvent.id.in_(ids)))
    return Counter(r.kind for r in rows)


def _count_events_before(session: Session, cutoff: dt.datetime) -> Counter[str]:
    """What :func:`delete_events_before` would delete, in all batches together."""
    rows = session.execute(
        select(StoredEvent.kind, func.count())
        .where(StoredEvent.at < cutoff)
        .group_by(StoredEvent.kind)
    )
    return Counter({kind: int(n) for kind, n in rows})

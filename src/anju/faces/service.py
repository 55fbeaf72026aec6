"""Face service (``node.faces``): enrollment, 1:1 verification, identification and search by
photo, stranger clusters (merge, split, link), "not this person", and retention.

Every write goes through the caller's session, so the audit hook logs it (encodings are
binary columns: the log names them as redacted, never their value); each write that changes
what a gallery holds bumps its counter (``face_generations``) in the same transaction, and
every process reloads that gallery on its next face (:mod:`anju.faces.recognise`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from anju.audit import service as audit
from anju.config import Settings
from anju.core.context import Ctx
from anju.core.crypto import FieldCipher
from anju.core.errors import NotFound, PermissionDenied, ValidationFailed
from anju.core.scope import Actor, in_scope, restrict
from anju.events.blobs import FolderBlobs
from anju.events.models import StoredEvent
from anju.faces import recognise
from anju.faces.encoder import FaceEncoder, FaceImageError, Vector, distance
from anju.faces.models import (
    FaceProbe,
    FaceRejection,
    FaceTemplate,
    OwnerKind,
    Source,
    StrangerCluster,
)
from anju.faces.recognise import (
    REJECTIONS,
    WATCH,
    FaceRecognizer,
    Galleries,
    community_scope,
    seal,
    unseal,
)
from anju.org.models import OrgUnit
from anju.registry.models import Person

log = logging.getLogger(__name__)

IMAGE_WORDS = {
    "not an image": "不是图片",
    "corrupt image": "图片已损坏",
    "image too large": "图片太大",
}


@dataclass(frozen=True)
class Candidate:
    """One ranked answer of identify / search by photo."""

    kind: Literal["resident", "watch", "stranger"]
    id: int  # person id, watchlist entry id or stranger cluster id
    label: str  # the person's name, the entry's category, the stranger's code
    distance: float
    community_id: int | None  # the watchlist entry's organisation unit for "watch"


@dataclass(frozen=True)
class Verification:
    """人证合一 — whether two photos show the same person."""

    same: bool
    distance: float
    threshold: float


@dataclass(frozen=True)
class StrangerView:
    """陌生人 — a stranger cluster as the console shows it."""

    id: int
    code: str
    community_id: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    sightings: int
    person_id: int | None
    templates: int
    merged_into_id: int | None = None


class FaceService:
    """Face recognition for one node (built by :func:`anju.bootstrap.bootstrap`)."""

    def __init__(
        self,
        settings: Settings,
        cipher: FieldCipher,
        encoder: Callable[[], FaceEncoder] | None = None,
    ) -> None:
        self.settings = settings
        self.cipher = cipher
        self.threshold = settings.face_threshold
        self.stranger_threshold = settings.face_stranger_threshold
        self._encoder = encoder
        self.galleries = Galleries(cipher)
        self.blobs = FolderBlobs(settings.blob_dir)

    def encoder(self) -> FaceEncoder:
        """The node's encoder (dlib's, loaded on first use)."""
        if self._encoder is not None:
            return self._encoder()
        from anju.faces.encoder import dlib_encoder

        return dlib_encoder()

    def recognizer(self, session: Session) -> FaceRecognizer:
        """The pipeline's face step over one delivery's session."""
        return FaceRecognizer(
            session,
            self.galleries,
            self.encoder,
            recognise.Settings(self.threshold, self.stranger_threshold, self.settings.timezone),
            self.blobs.get,
            self.cipher,
        )

    # --- enrollment ------------------------------------------------------------------------

    def enroll(self, ctx: Ctx, person_id: int, images: Sequence[bytes]) -> int:
        """Enroll registration photos of a person (one face each); all or nothing."""
        _need(ctx.actor, "face.manage")
        person = _person(ctx, person_id)
        vectors = self._single_faces(images)
        encoder = self.encoder()
        for image, vector in zip(images, vectors, strict=True):
            ctx.session.add(
                FaceTemplate(
                    community_id=person.community_id,
                    owner_kind=OwnerKind.PERSON.value,
                    owner_id=person.id,
                    model=encoder.model,
                    vector_enc=seal(self.cipher, vector),
                    source=Source.REGISTRATION.value,
                    image=self.blobs.put(image),
                )
            )
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), community_scope(person.community_id))
        return len(vectors)

    def enroll_vectors(
        self, ctx: Ctx, person_id: int, vectors: Sequence[Sequence[float]], model: str
    ) -> int:
        """Enroll encodings a device (or the simulator) computed with ``model``."""
        _need(ctx.actor, "face.manage")
        person = _person(ctx, person_id)
        name, checked = self._device_vectors(vectors, model)
        for vector in checked:
            ctx.session.add(
                FaceTemplate(
                    community_id=person.community_id,
                    owner_kind=OwnerKind.PERSON.value,
                    owner_id=person.id,
                    model=name,
                    vector_enc=seal(self.cipher, vector),
                    source=Source.DEVICE.value,
                )
            )
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), community_scope(person.community_id))
        return len(checked)

    def enroll_watch(self, ctx: Ctx, entry_id: int, images: Sequence[bytes]) -> int:
        """Enroll photos of a watchlist face entry (布控照片); all or nothing."""
        _need(ctx.actor, "watchlist.manage")
        entry_id = self._watch_entry(ctx, entry_id)
        vectors = self._single_faces(images)
        encoder = self.encoder()
        for image, vector in zip(images, vectors, strict=True):
            self._add_watch(ctx, entry_id, encoder.model, vector, self.blobs.put(image))
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), WATCH)
        return len(vectors)

    def enroll_watch_vectors(
        self, ctx: Ctx, entry_id: int, vectors: Sequence[Sequence[float]], model: str
    ) -> int:
        """Enroll encodings of a watchlist face entry computed with ``model`` (devices,
        the simulator)."""
        _need(ctx.actor, "watchlist.manage")
        entry_id = self._watch_entry(ctx, entry_id)
        name, checked = self._device_vectors(vectors, model)
        for vector in checked:
            self._add_watch(ctx, entry_id, name, vector, None)
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), WATCH)
        return len(checked)

    def _device_vectors(
        self, vectors: Sequence[Sequence[float]], model: str
    ) -> tuple[str, list[Vector]]:
        """The model's name and each vector checked (its length, finite values); at least one."""
        name = (model or "").strip()
        if not name or len(name) > 40:
            raise ValidationFailed.one("model", "a model name of up to 40 characters is required")
        checked = [self._device_vector(v, name, i) for i, v in enumerate(vectors, start=1)]
        if not checked:
            raise ValidationFailed.one("vectors", "at least one feature vector is required")
        return name, checked

    def _watch_entry(self, ctx: Ctx, entry_id: int) -> int:
        """A face entry of a watchlist the caller may keep (NotFound otherwise)."""
        from anju.alerts.watchlist import MatchType, WatchEntry

        entry = ctx.session.get(WatchEntry, entry_id)
        if entry is None or not _unit_in_scope(ctx, entry.org_unit_id):
            raise NotFound("watchlist entry")
        if entry.police_only and not ctx.actor.police:
            raise NotFound("watchlist entry")
        if entry.match_type is not MatchType.FACE:
            raise ValidationFailed.one("entry_id", "this watchlist entry is not a face entry")
        return entry.id

    def _add_watch(
        self, ctx: Ctx, entry_id: int, model: str, vector: Vector, image: str | None
    ) -> None:
        ctx.session.add(
            FaceTemplate(
                community_id=None,
                owner_kind=OwnerKind.WATCH.value,
                owner_id=entry_id,
                model=model,
                vector_enc=seal(self.cipher, vector),
                source=Source.WATCHLIST.value,
                image=image,
            )
        )

    def face_count(self, ctx: Ctx, person_id: int) -> int:
        """How many face templates a person has."""
        _person(ctx, person_id)
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(FaceTemplate)
                .where(
                    FaceTemplate.owner_kind == OwnerKind.PERSON.value,
                    FaceTemplate.owner_id == person_id,
                )
            )
            or 0
        )

    def forget_person(self, ctx: Ctx, person_id: int) -> int:
        """Delete a person's face templates (audited, one entry each); how many went."""
        _need(ctx.actor, "face.manage")
        _person(ctx, person_id)
        return drop_person_templates(ctx.session, person_id)

    # --- 1:1 and 1:N -----------------------------------------------------------------------

    def verify(self, image_a: bytes, image_b: bytes) -> Verification:
        """人证合一: do the two photos (e.g. registration photo and ID card photo) show the
        same person? The largest face of each is compared."""
        a = self._largest(image_a, "image_a")
        b = self._largest(image_b, "image_b")
        gap = distance(a, b)
        return Verification(gap <= self.threshold, round(gap, 4), self.threshold)

    def identify(self, ctx: Ctx, image: bytes, *, limit: int = 5) -> list[Candidate]:
        """Who is this face? Candidates within the threshold, nearest first, among what the
        caller may see (watchlist entries only for police); needs ``face.view``."""
        _need(ctx.actor, "face.view")
        probe = self._largest(image, "image")
        return self._candidates(ctx, probe, self.encoder().model, limit)

    def search_by_photo(
        self, ctx: Ctx, image: bytes, reason: str, *, limit: int = 10
    ) -> list[Candidate]:
        """以图搜人 — police only (``face.search``), each search audited with its reason."""
        _need(ctx.actor, "face.search")
        why = (reason or "").strip()
        if not why:
            raise ValidationFailed.one("reason", "give the reason for this search")
        probe = self._largest(image, "image")
        found = self._candidates(ctx, probe, self.encoder().model, limit)
        audit.record(
            ctx.session,
            "face.search",
            entity="face_templates",
            detail={
                "reason": why[:200],
                "candidates": [{"kind": c.kind, "id": c.id} for c in found],
            },
        )
        return found

    def _candidates(self, ctx: Ctx, probe: Vector, model: str, limit: int) -> list[Candidate]:
        g = self.galleries
        actor = ctx.actor
        wide = max(50, limit * 5)
        recognise.forget_on_rollback(ctx.session, g)
        with g.lock:
            g.refresh(ctx.session)
            rejected: set[str] = set()  # a search shows every near face, rejected or not
            persons = [(i, d) for i, d in g.nearest_person(model, probe, rejected, wide)]
            watch = g.watch_hits(model, probe, rejected, self.threshold, wide)
            communities = g.stranger_communities()
            strangers = [
                (cluster, d)
                for community in communities
                for cluster, d in g.nearest_stranger(community, model, probe, rejected, wide)
            ]
        out: list[Candidate] = []
        near_people = {i: d for i, d in persons if d <= self.threshold}
        if near_people:
            stmt = restrict(
                select(Person.id, Person.name, Person.community_id).where(
                    Person.id.in_(near_people)
                ),
                Person,
                actor,
            )
            for pid, name, community in ctx.session.execute(stmt):
                out.append(Candidate("resident", pid, name, near_people[pid], community))
        if watch and actor.police:
            out.extend(self._watch_candidates(ctx, dict(watch)))
        near_strangers = [(c, d) for c, d in strangers if d <= self.threshold]
        if near_strangers:
            allowed = _communities(ctx, {c.community_id for c, _ in near_strangers})
            out.extend(
                Candidate("stranger", c.id, c.code, d, c.community_id)
                for c, d in near_strangers
                if c.community_id in allowed
            )
        out.sort(key=lambda c: c.distance)
        return [
            Candidate(c.kind, c.id, c.label, round(c.distance, 4), c.community_id)
            for c in out[:limit]
        ]

    def _watch_candidates(self, ctx: Ctx, hits: dict[int, float]) -> list[Candidate]:
        from anju.alerts.watchlist import WatchEntry

        stmt = select(WatchEntry.id, WatchEntry.category, WatchEntry.org_unit_id).where(
            WatchEntry.id.in_(hits)
        )
        if ctx.actor.org_path != "/":
            # Entries of the caller's subtree and of the units above it (they apply to it).
            path = ctx.actor.org_path
            above = [int(p) for p in path.strip("/").split("/") if p]
            units = select(OrgUnit.id).where(
                OrgUnit.path.startswith(path, autoescape=True) | OrgUnit.id.in_(above)
            )
            stmt = stmt.where(WatchEntry.org_unit_id.in_(units))
        return [
            Candidate("watch", ident, category, hits[ident], unit)
            for ident, category, unit in ctx.session.execute(stmt)
        ]

    # --- strangers -------------------------------------------------------------------------

    def strangers(
        self, ctx: Ctx, *, community_id: int | None = None, limit: int = 50, offset: int = 0
    ) -> list[StrangerView]:
        """Stranger clusters in scope, most recently seen first (merged ones left out)."""
        _need(ctx.actor, "face.view")
        stmt = select(StrangerCluster).where(StrangerCluster.merged_into_id.is_(None))
        if community_id is not None:
            stmt = stmt.where(StrangerCluster.community_id == community_id)
        stmt = restrict(stmt, StrangerCluster, ctx.actor)
        rows = list(
            ctx.session.scalars(
                stmt.order_by(StrangerCluster.last_seen.desc(), StrangerCluster.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        counts = _template_counts(ctx.session, [r.id for r in rows])
        return [_view(r, counts.get(r.id, 0)) for r in rows]

    def stranger(self, ctx: Ctx, cluster_id: int) -> StrangerView:
        """One cluster; NotFound outside the caller's scope."""
        _need(ctx.actor, "face.view")
        cluster = _cluster(ctx, cluster_id)
        return _view(cluster, _template_counts(ctx.session, [cluster.id]).get(cluster.id, 0))

    def merge(self, ctx: Ctx, keep_id: int, other_id: int) -> StrangerView:
        """Two clusters are one face: ``other``'s encodings and sightings move to ``keep``
        (its events take ``keep``'s code); ``other`` stays, pointing at ``keep``."""
        _need(ctx.actor, "face.manage")
        if keep_id == other_id:
            raise ValidationFailed.one("other_id", "cannot merge a stranger with itself")
        keep, other = _cluster(ctx, keep_id), _cluster(ctx, other_id)
        if keep.community_id != other.community_id:
            raise ValidationFailed.one(
                "other_id", "only strangers of the same community can be merged"
            )
        if keep.merged_into_id is not None or other.merged_into_id is not None:
            raise ValidationFailed.one("other_id", "this stranger was merged into another")
        for template in _templates(ctx.session, other.id):
            template.owner_id = keep.id
        for rejection in ctx.session.scalars(
            select(FaceRejection).where(FaceRejection.owner == f"s:{other.id}")
        ):
            rejection.owner = f"s:{keep.id}"
        ctx.session.execute(
            update(StoredEvent)
            .where(
                StoredEvent.community_id == keep.community_id,
                StoredEvent.subject_type == "face",
                StoredEvent.subject_value == other.code,
            )
            .values(subject_value=keep.code)
        )
        keep.sightings += other.sightings
        keep.first_seen = min(keep.first_seen, other.first_seen)
        keep.last_seen = max(keep.last_seen, other.last_seen)
        if keep.person_id is None:
            keep.person_id = other.person_id
        other.merged_into_id = keep.id
        other.sightings = 0
        ctx.session.flush()
        conn = ctx.session.connection()
        recognise.bump(conn, community_scope(keep.community_id))
        recognise.bump(conn, REJECTIONS)
        return self.stranger(ctx, keep.id)

    def split(self, ctx: Ctx, cluster_id: int, event_ids: Sequence[int]) -> StrangerView:
        """Some sightings were someone else: they become a new cluster, with the encodings
        taken from them, and the old cluster remembers that those faces are not it."""
        _need(ctx.actor, "face.manage")
        cluster = _cluster(ctx, cluster_id)
        wanted = sorted(set(event_ids))
        if not wanted:
            raise ValidationFailed.one("event_ids", "choose the sightings to split off")
        events = list(
            ctx.session.execute(
                select(StoredEvent.id, StoredEvent.at).where(
                    StoredEvent.id.in_(wanted),
                    StoredEvent.community_id == cluster.community_id,
                    StoredEvent.subject_type == "face",
                    StoredEvent.subject_value == cluster.code,
                )
            )
        )
        if len(events) != len(wanted):
            raise ValidationFailed.one(
                "event_ids", "not all chosen sightings belong to this stranger"
            )
        if len(events) >= cluster.sightings and cluster.sightings > 0:
            raise ValidationFailed.one("event_ids", "cannot split off every sighting")
        conn = ctx.session.connection()
        day = ctx.now().astimezone(ZoneInfo(self.settings.timezone)).date()
        first = min(at for _, at in events)
        last = max(at for _, at in events)
        new = StrangerCluster(
            community_id=cluster.community_id,
            code=recognise.next_code(conn, day),
            first_seen=first,
            last_seen=last,
            sightings=len(events),
        )
        ctx.session.add(new)
        ctx.session.flush()
        moved = list(
            ctx.session.scalars(
                select(FaceTemplate).where(
                    FaceTemplate.owner_kind == OwnerKind.STRANGER.value,
                    FaceTemplate.owner_id == cluster.id,
                    FaceTemplate.event_id.in_(wanted),
                )
            )
        )
        for template in moved:
            template.owner_id = new.id
        probes = list(
            ctx.session.scalars(
                select(FaceProbe).where(FaceProbe.event_id.in_(wanted)).order_by(FaceProbe.id)
            )
        )
        kept: list[Vector] = [unseal(self.cipher, t.vector_enc) for t in moved]
        for probe in probes:
            vector = unseal(self.cipher, probe.vector_enc)
            # The old cluster must not take this face back.
            ctx.session.add(
                FaceRejection(
                    community_id=cluster.community_id,
                    owner=f"s:{cluster.id}",
                    model=probe.model,
                    vector_enc=probe.vector_enc,
                    event_id=probe.event_id,
                    reason="split",
                    user_id=ctx.actor.user_id,
                )
            )
            if len(kept) < recognise.MAX_REPRESENTATIVES and all(
                distance(v, vector) >= recognise.REPRESENTATIVE_SPACING for v in kept
            ):
                kept.append(vector)
                ctx.session.add(
                    FaceTemplate(
                        community_id=cluster.community_id,
                        owner_kind=OwnerKind.STRANGER.value,
                        owner_id=new.id,
                        model=probe.model,
                        vector_enc=probe.vector_enc,
                        source=Source.CAPTURE.value,
                        event_id=probe.event_id,
                    )
                )
        ctx.session.execute(
            update(StoredEvent)
            .where(StoredEvent.id.in_(wanted), StoredEvent.subject_value == cluster.code)
            .values(subject_value=new.code)
        )
        cluster.sightings = max(0, cluster.sightings - len(events))
        ctx.session.flush()
        recognise.bump(conn, community_scope(cluster.community_id))
        recognise.bump(conn, REJECTIONS)
        return self.stranger(ctx, new.id)

    def link(self, ctx: Ctx, cluster_id: int, person_id: int) -> None:
        """The stranger is this registered person: the cluster keeps its code and encodings
        but every match of it (past sightings and future ones) counts as the person."""
        _need(ctx.actor, "face.manage")
        cluster = _cluster(ctx, cluster_id)
        person = _person(ctx, person_id)
        cluster.person_id = person.id
        ctx.session.execute(
            update(StoredEvent)
            .where(
                StoredEvent.community_id == cluster.community_id,
                StoredEvent.subject_type == "face",
                StoredEvent.subject_value == cluster.code,
                StoredEvent.person_id.is_(None),
            )
            .values(person_id=person.id)
        )
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), community_scope(cluster.community_id))

    def not_this_person(self, ctx: Ctx, event_id: int, reason: str) -> None:
        """不是此人: the event's face was matched wrongly. The match is taken off the event
        and remembered, so a face this near never matches that owner again."""
        _need(ctx.actor, "face.manage")
        why = (reason or "").strip()
        if not why:
            raise ValidationFailed.one("reason", "give a reason")
        row = ctx.session.scalar(
            restrict(select(StoredEvent).where(StoredEvent.id == event_id), StoredEvent, ctx.actor)
        )
        if row is None:
            raise NotFound("event")
        stored = row.data.get("face") if isinstance(row.data, dict) else None
        face: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        owners: list[str] = []
        cluster = None
        if face.get("stranger"):
            cluster = ctx.session.scalar(
                select(StrangerCluster).where(StrangerCluster.code == face["stranger"])
            )
        if cluster is not None:
            owners.append(f"s:{cluster.id}")
        elif row.person_id is not None and face.get("match") in ("resident", "person"):
            owners.append(f"p:{row.person_id}")
        owners.extend(f"w:{e}" for e in face.get("watch", []) if isinstance(e, int))
        if not owners:
            raise ValidationFailed.one("event_id", "this event has no face match")
        probe = ctx.session.scalar(select(FaceProbe).where(FaceProbe.event_id == row.id))
        if probe is None:
            raise ValidationFailed.one(
                "event_id", "this event's face encoding is past its retention"
            )
        for owner in owners:
            ctx.session.add(
                FaceRejection(
                    community_id=row.community_id,
                    owner=owner,
                    model=probe.model,
                    vector_enc=probe.vector_enc,
                    event_id=row.id,
                    reason=why[:200],
                    user_id=ctx.actor.user_id,
                )
            )
        face["rejected"] = owners
        data = {**row.data, "face": face}
        values: dict[str, Any] = {"data": data}
        if cluster is not None:
            # The sighting leaves the stranger's trajectory.
            values.update(subject_type=None, subject_value=None)
            cluster.sightings = max(0, cluster.sightings - 1)
        if row.person_id is not None and (cluster is None or cluster.person_id == row.person_id):
            values.update(person_id=None)
        ctx.session.execute(
            update(StoredEvent)
            .where(StoredEvent.id == row.id, StoredEvent.at == row.at)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        ctx.session.flush()
        recognise.bump(ctx.session.connection(), REJECTIONS)

    # --- helpers ---------------------------------------------------------------------------

    def _single_faces(self, images: Sequence[bytes]) -> list[Vector]:
        """One encoding per photo, or ValidationFailed naming the photo."""
        if not images:
            raise ValidationFailed.one("image", "upload at least one photo")
        encoder = self.encoder()
        out = []
        for number, image in enumerate(images, start=1):
            try:
                found = encoder.faces(image)
            except FaceImageError as exc:
                words = IMAGE_WORDS.get(str(exc), str(exc))
                raise ValidationFailed.one("image", f"照片{number}{words}") from None
            if not found:
                raise ValidationFailed.one("image", f"照片{number}中未检测到人脸")
            if len(found) > 1:
                raise ValidationFailed.one("image", f"照片{number}中有多张人脸")
            out.append(found[0].vector)
        return out

    def _largest(self, image: bytes, name: str) -> Vector:
        try:
            found = self.encoder().faces(image)
        except FaceImageError as exc:
            raise ValidationFailed.one(name, IMAGE_WORDS.get(str(exc), str(exc))) from None
        if not found:
            raise ValidationFailed.one(name, "no face found in the photo")
        best = max(found, key=lambda f: (f.box.bottom - f.box.top) * (f.box.right - f.box.left))
        return best.vector

    def _device_vector(self, value: Sequence[float], model: str, number: int) -> Vector:
        try:
            vector = np.asarray(list(value), dtype=np.float32)
        except (TypeError, ValueError):
            raise ValidationFailed.one("vectors", f"第{number}个特征向量不是数字列表") from None
        expected = self.galleries.dim(model)
        if vector.ndim != 1 or not len(vector) or not np.all(np.isfinite(vector)):
            raise ValidationFailed.one("vectors", f"第{number}个特征向量无效")
        if expected is not None and len(vector) != expected:
            raise ValidationFailed.one(
                "vectors", f"第{number}个特征向量长度为{len(vector)}，模型{model}应为{expected}"
            )
        return vector


# --- retention ---------------------------------------------------------------------------


def purge_strangers(session: Session, cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Delete stranger clusters not seen since ``cutoff``, with their encodings and the
    "not this person" notes about them; how many clusters (would) go."""
    ids = list(
        session.scalars(select(StrangerCluster.id).where(StrangerCluster.last_seen < cutoff))
    )
    if dry_run or not ids:
        return len(ids)
    communities = set(
        session.scalars(
            select(StrangerCluster.community_id).where(StrangerCluster.id.in_(ids)).distinct()
        )
    )
    session.execute(
        delete(FaceTemplate).where(
            FaceTemplate.owner_kind == OwnerKind.STRANGER.value, FaceTemplate.owner_id.in_(ids)
        )
    )
    session.execute(delete(FaceRejection).where(FaceRejection.owner.in_([f"s:{i}" for i in ids])))
    session.execute(
        update(StrangerCluster)
        .where(StrangerCluster.merged_into_id.in_(ids))
        .values(merged_into_id=None)
    )
    session.execute(delete(StrangerCluster).where(StrangerCluster.id.in_(ids)))
    conn = session.connection()
    for community in communities:
        recognise.bump(conn, community_scope(community))
    recognise.bump(conn, REJECTIONS)
    return len(ids)


def purge_probes(session: Session, expired: Any, *, dry_run: bool = False) -> int:
    """Delete the sealed probes of face events whose image is past retention (``expired``
    is a condition on ``kind`` and ``at`` over :class:`FaceProbe`)."""
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(FaceProbe).where(expired)) or 0)
    result: Any = session.execute(delete(FaceProbe).where(expired))
    return int(result.rowcount or 0)


# --- lookups -----------------------------------------------------------------------------


def _need(actor: Actor, permission: str) -> None:
    if not actor.can(permission):
        raise PermissionDenied(permission)


def _person(ctx: Ctx, person_id: int) -> Person:
    row = ctx.session.scalar(
        restrict(select(Person).where(Person.id == person_id), Person, ctx.actor)
    )
    if row is None:
        raise NotFound("person")
    return row


def _cluster(ctx: Ctx, cluster_id: int) -> StrangerCluster:
    row = ctx.session.scalar(
        restrict(
            select(StrangerCluster).where(StrangerCluster.id == cluster_id),
            StrangerCluster,
            ctx.actor,
        )
    )
    if row is None:
        raise NotFound("stranger")
    return row


def _templates(session: Session, cluster_id: int) -> list[FaceTemplate]:
    return list(
        session.scalars(
            select(FaceTemplate).where(
                FaceTemplate.owner_kind == OwnerKind.STRANGER.value,
                FaceTemplate.owner_id == cluster_id,
            )
        )
    )


def _template_counts(session: Session, cluster_ids: list[int]) -> dict[int, int]:
    if not cluster_ids:
        return {}
    rows = session.execute(
        select(FaceTemplate.owner_id, func.count())
        .where(
            FaceTemplate.owner_kind == OwnerKind.STRANGER.value,
            FaceTemplate.owner_id.in_(cluster_ids),
        )
        .group_by(FaceTemplate.owner_id)
    )
    return {int(o): int(n) for o, n in rows}


def _view(row: StrangerCluster, templates: int) -> StrangerView:
    return StrangerView(
        id=row.id,
        code=row.code,
        community_id=row.community_id,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        sightings=row.sightings,
        person_id=row.person_id,
        templates=templates,
        merged_into_id=row.merged_into_id,
    )


def _communities(ctx: Ctx, wanted: set[int]) -> set[int]:
    """Which of ``wanted`` lie in the caller's scope."""
    if ctx.actor.org_path == "/":
        return wanted
    return {c for c in wanted if in_scope(ctx.session, ctx.actor, c)}


def _unit_in_scope(ctx: Ctx, unit_id: int) -> bool:
    """A watchlist entry's unit: in the caller's subtree, or above it (it applies there)."""
    if ctx.actor.org_path == "/":
        return True
    path = ctx.session.scalar(select(OrgUnit.path).where(OrgUnit.id == unit_id)) or ""
    return path.startswith(ctx.actor.org_path) or ctx.actor.org_path.startswith(path)


__all__ = [
    "Candidate",
    "FaceService",
    "StrangerView",
    "Verification",
    "purge_probes",
    "purge_strangers",
]


def drop_person_templates(session: Session, person_id: int) -> int:
    """Delete a person's face templates (each audited) and tell every process's galleries;
    how many went. Also called when the person is deleted from the registry: templates have
    no foreign key (their owner may be a person, a watch entry or a stranger)."""
    rows = list(
        session.scalars(
            select(FaceTemplate).where(
                FaceTemplate.owner_kind == OwnerKind.PERSON.value,
                FaceTemplate.owner_id == person_id,
            )
        )
    )
    for row in rows:
        session.delete(row)
    session.flush()
    for community in {r.community_id for r in rows if r.community_id is not None}:
        recognise.bump(session.connection(), community_scope(community))
    return len(rows)

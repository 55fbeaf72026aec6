"""Recognition in the event pipeline, and the in-memory galleries it searches.

:class:`Galleries` holds, per model, the node's enrolled persons (``"p:<id>"``), the
watchlist entries (``"w:<id>"``) and each community's stranger clusters (``"s:<id>"``),
decrypted from ``face_templates`` on first use. Every change to templates or rejections bumps
a counter in ``face_generations`` (``"c:<community>"`` for a community's persons and
strangers, ``"watch"``, ``"rejections"``), in the same transaction; a process checks the
counters once per delivery that carries faces (one small query) and reloads only what moved.

:class:`FaceRecognizer` is the pipeline's face step (:class:`anju.events.pipeline.Recognizer`):
it encodes every face-bearing event of a delivery first (CPU, no database), then under the
galleries' lock finds each face's best match, joins or starts stranger clusters, and returns
the events with ``data["face"]`` filled in, the device's raw vector removed and, for a
stranger, the subject ``(face, "S-…")``. After the store wrote the events it records each
face's sealed probe (what "not this person" and a split need later).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Table, case, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from anju.core.crypto import FieldCipher
from anju.core.db import utcnow
from anju.events.model import Event, Kind, Subject, SubjectType
from anju.events.models import StoredEvent
from anju.events.pipeline import DeviceRef, Recognised
from anju.faces.encoder import Box, FaceEncoder, FaceImageError, Vector, distance
from anju.faces.gallery import Gallery
from anju.faces.models import (
    FaceGeneration,
    FaceProbe,
    FaceRejection,
    FaceTemplate,
    OwnerKind,
    Source,
    StrangerCluster,
)
from anju.org.models import OrgUnit
from anju.registry.models import Person, Residency

log = logging.getLogger(__name__)

CONTEXT = "face"  # the cipher's associated data for every sealed encoding
REJECT_RADIUS = 0.35  # a probe this near a rejected face never matches the rejected owner
MAX_REPRESENTATIVES = 5  # encodings kept per stranger cluster
REPRESENTATIVE_SPACING = 0.25  # a sighting adds a representative only when this far from all
# Models whose vectors have a known length (others take the length of their first template).
KNOWN_DIMS = {"dlib_resnet_v1": 128, "anju-sim-v1": 128}
FACE_KINDS = frozenset({Kind.ACCESS_FACE, Kind.CAPTURE_FACE})
WATCH = "watch"
REJECTIONS = "rejections"
# Core tables: the pipeline writes through the connection (batched bookkeeping, like events).
TEMPLATES: Table = FaceTemplate.__table__  # type: ignore[assignment]
CLUSTERS: Table = StrangerCluster.__table__  # type: ignore[assignment]
PROBES: Table = FaceProbe.__table__  # type: ignore[assignment]
GENERATIONS: Table = FaceGeneration.__table__  # type: ignore[assignment]


def community_scope(community_id: int) -> str:
    return f"c:{community_id}"


def seal(cipher: FieldCipher, vector: Any) -> bytes:
    """An encoding as stored: float32 little-endian bytes, AES-GCM sealed (context "face")."""
    raw = np.asarray(vector, dtype="<f4").tobytes()
    return cipher.encrypt_bytes(raw, CONTEXT)


def unseal(cipher: FieldCipher, blob: bytes) -> Vector:
    return np.frombuffer(cipher.decrypt_bytes(blob, CONTEXT), dtype="<f4").astype(np.float32)


def bump(conn: Connection, scope: str) -> int:
    """Add one to a scope's counter (creating it at 0) and return the new value; the row lock
    it takes also orders concurrent writers of the same scope."""
    table = GENERATIONS
    maker: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        maker(table)
        .values(scope=scope, generation=0)
        .on_conflict_do_nothing(index_elements=["scope"])
    )
    value = conn.execute(
        update(table)
        .where(table.c.scope == scope)
        .values(generation=table.c.generation + 1)
        .returning(table.c.generation)
    ).scalar_one()
    return int(value)


def next_code(conn: Connection, day: dt.date) -> str:
    """The next stranger code of a local day on this node: ``S-20261121-0042``."""
    number = bump(conn, f"code:{day:%Y%m%d}")
    return f"S-{day:%Y%m%d}-{number:04d}"


@dataclass
class Cluster:
    """A stranger cluster as the galleries know it."""

    id: int
    community_id: int
    code: str
    person_id: int | None
    model: str
    vectors: list[Vector] = field(default_factory=list)


@dataclass
class Galleries:
    """The node's face galleries in memory, reloaded per scope when its counter moved.

    Use under :attr:`lock`: the web server delivers from several threads."""

    cipher: FieldCipher
    lock: threading.RLock = field(default_factory=threading.RLock)
    persons: dict[str, Gallery] = field(default_factory=dict)  # model → "p:" owners
    watch: dict[str, Gallery] = field(default_factory=dict)  # model → "w:" owners
    strangers: dict[tuple[int, str], Gallery] = field(default_factory=dict)  # (community, model)
    clusters: dict[int, Cluster] = field(default_factory=dict)
    rejections: dict[str, dict[str, list[Vector]]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)  # model → length seen
    _generations: dict[str, int] = field(default_factory=dict)
    _person_owners: dict[int, set[tuple[str, str]]] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget everything (a rolled-back transaction may have changed what is held)."""
        with self.lock:
            self.persons.clear()
            self.watch.clear()
            self.strangers.clear()
            self.clusters.clear()
            self.rejections.clear()
            self._generations.clear()
            self._person_owners.clear()

    def dim(self, model: str) -> int | None:
        return KNOWN_DIMS.get(model) or self.dims.get(model)

    def refresh(self, session: Session) -> None:
        """Reload every scope whose counter differs from the one loaded (one query)."""
        conn = session.connection()
        rows = conn.execute(
            select(FaceGeneration.scope, FaceGeneration.generation).where(
                FaceGeneration.scope.not_like("code:%")
            )
        ).all()
        current = {str(scope): int(generation) for scope, generation in rows}
        for scope in {WATCH, REJECTIONS} | set(current) | set(self._generations):
            wanted = current.get(scope, 0)
            if self._generations.get(scope) != wanted:
                self._load(conn, scope)
                self._generations[scope] = wanted

    def changed(self, conn: Connection, scope: str, apply: Callable[[], None]) -> None:
        """Bump ``scope`` for a change this process made; apply it in memory when nobody
        else changed the scope meanwhile, else reload the scope (which sees the change)."""
        generation = bump(conn, scope)
        if self._generations.get(scope) == generation - 1:
            apply()
        else:
            self._load(conn, scope)
        self._generations[scope] = generation

    # -- loading ------------------------------------------------------------------------

    def _load(self, conn: Connection, scope: str) -> None:
        if scope == WATCH:
            self.watch.clear()
            rows = conn.execute(
                select(FaceTemplate.owner_id, FaceTemplate.model, FaceTemplate.vector_enc).where(
                    FaceTemplate.owner_kind == OwnerKind.WATCH.value
                )
            )
            for owner_id, model, blob in rows:
                self._add(self.watch, model, f"w:{owner_id}", unseal(self.cipher, blob))
        elif scope == REJECTIONS:
            self.rejections.clear()
            notes = conn.execute(
                select(FaceRejection.owner, FaceRejection.model, FaceRejection.vector_enc)
            )
            for owner, model, blob in notes:
                vector = unseal(self.cipher, blob)
                self.rejections.setdefault(model, {}).setdefault(owner, []).append(vector)
        elif scope.startswith("c:"):
            self._load_community(conn, int(scope[2:]))

    def _load_community(self, conn: Connection, community_id: int) -> None:
        """A community's enrolled persons (into the node-wide galleries) and strangers."""
        for model, owner in self._person_owners.pop(community_id, set()):
            gallery = self.persons.get(model)
            if gallery is not None:
                gallery.remove(owner)
        for key in [k for k in self.strangers if k[0] == community_id]:
            del self.strangers[key]
        for ident in [i for i, c in self.clusters.items() if c.community_id == community_id]:
            del self.clusters[ident]
        clusters = conn.execute(
            select(StrangerCluster.id, StrangerCluster.code, StrangerCluster.person_id).where(
                StrangerCluster.community_id == community_id,
                StrangerCluster.merged_into_id.is_(None),
            )
        )
        known = {ident: (code, person) for ident, code, person in clusters}
        owned: set[tuple[str, str]] = set()
        rows = conn.execute(
            select(
                FaceTemplate.owner_kind,
                FaceTemplate.owner_id,
                FaceTemplate.model,
                FaceTemplate.vector_enc,
            )
            .where(FaceTemplate.community_id == community_id)
            .order_by(FaceTemplate.id)
        )
        for kind, owner_id, model, blob in rows:
            vector = unseal(self.cipher, blob)
            if kind == OwnerKind.PERSON.value:
                self._add(self.persons, model, f"p:{owner_id}", vector)
                owned.add((model, f"p:{owner_id}"))
            elif kind == OwnerKind.STRANGER.value and int(owner_id) in known:
                ident = int(owner_id)
                code, person = known[ident]
                cluster = self.clusters.setdefault(
                    ident, Cluster(ident, community_id, code, person, model)
                )
                cluster.vectors.append(vector)
                self._add_stranger(community_id, model, ident, vector)
        self._person_owners[community_id] = owned

    def _add(self, galleries: dict[str, Gallery], model: str, owner: str, vector: Vector) -> None:
        gallery = galleries.get(model)
        if gallery is None:
            gallery = galleries[model] = Gallery(len(vector))
            self.dims.setdefault(model, len(vector))
        if gallery.dim == len(vector):  # a stored vector of another length cannot be searched
            gallery.add(owner, vector)

    def _add_stranger(self, community_id: int, model: str, cluster_id: int, vector: Vector) -> None:
        key = (community_id, model)
        gallery = self.strangers.get(key)
        if gallery is None:
            gallery = self.strangers[key] = Gallery(len(vector))
            self.dims.setdefault(model, len(vector))
        if gallery.dim == len(vector):
            gallery.add(f"s:{cluster_id}", vector)

    # -- searching ----------------------------------------------------------------------

    def rejected(self, model: str, probe: Vector) -> set[str]:
        """Owners this probe must not match: someone said a face this near is not them."""
        out: set[str] = set()
        for owner, vectors in self.rejections.get(model, {}).items():
            if any(len(v) == len(probe) and distance(v, probe) < REJECT_RADIUS for v in vectors):
                out.add(owner)
        return out

    def nearest_person(
        self, model: str, probe: Vector, exclude: Collection[str], k: int = 1
    ) -> list[tuple[int, float]]:
        gallery = self.persons.get(model)
        if gallery is None or gallery.dim != len(probe):
            return []
        return [
            (int(m.owner[2:]), m.distance)
            for m in gallery.search(probe, k, prefix="p:", exclude=exclude)
        ]

    def watch_hits(
        self, model: str, probe: Vector, exclude: Collection[str], threshold: float, k: int = 20
    ) -> list[tuple[int, float]]:
        gallery = self.watch.get(model)
        if gallery is None or gallery.dim != len(probe):
            return []
        return [
            (int(m.owner[2:]), m.distance)
            for m in gallery.search(probe, k, prefix="w:", exclude=exclude)
            if m.distance <= threshold
        ]

    def nearest_stranger(
        self, community_id: int, model: str, probe: Vector, exclude: Collection[str], k: int = 1
    ) -> list[tuple[Cluster, float]]:
        gallery = self.strangers.get((community_id, model))
        if gallery is None or gallery.dim != len(probe):
            return []
        out = []
        for m in gallery.search(probe, k, prefix="s:", exclude=exclude):
            cluster = self.clusters.get(int(m.owner[2:]))
            if cluster is not None:
                out.append((cluster, m.distance))
        return out

    def stranger_communities(self) -> set[int]:
        return {community for community, _ in self.strangers}


# --- the pipeline step -------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One face-bearing event's encoding (or why there is none)."""

    model: str
    vector: Vector | None = None
    faces: int = 1
    outcome: str | None = None  # "no_face" | "error" when there is no vector
    reason: str | None = None


@dataclass
class _Decision:
    face: dict[str, Any]
    person_id: int | None = None
    subject: Subject | None = None
    probe: Probe | None = None
    new_templates: list[int] = field(default_factory=list)


@dataclass
class Settings:
    """What recognition needs of the node's settings."""

    threshold: float
    stranger_threshold: float
    timezone: str


class FaceRecognizer:
    """The face step of one delivery's pipeline (see the module docstring)."""

    def __init__(
        self,
        session: Session,
        galleries: Galleries,
        encoder: Callable[[], FaceEncoder],
        settings: Settings,
        blob: Callable[[str], bytes | None],
        cipher: FieldCipher,
    ) -> None:
        self.session = session
        self.galleries = galleries
        self.encoder = encoder
        self.settings = settings
        self.blob = blob
        self.cipher = cipher
        self._pending: list[tuple[int, DeviceRef, Event, _Decision]] = []

    # Recognizer protocol -----------------------------------------------------------------

    def recognise(self, items: Sequence[tuple[Event, DeviceRef]]) -> list[Recognised | None]:
        """Each item's recognised event and person (None: not a face event, left as is)."""
        out: list[Recognised | None] = [None] * len(items)
        self._pending = []
        wanted = [i for i, (e, _) in enumerate(items) if self._bears_face(e)]
        if not wanted:
            return out
        wanted = self._not_yet_stored(items, wanted)
        probes: dict[int, Probe] = {}
        for i in wanted:  # CPU work, before any write
            probe = self._probe(items[i][0])
            if probe is not None:
                probes[i] = probe
        if not probes:
            return out
        forget_on_rollback(self.session, self.galleries)
        decisions: dict[int, _Decision] = {}
        with self.galleries.lock:
            self.galleries.refresh(self.session)
            for i, probe in probes.items():
                event, device = items[i]
                decisions[i] = self._decide(event, device, probe)
        self._label_people(items, decisions)
        for i, decision in decisions.items():
            event, device = items[i]
            data = {k: v for k, v in event.data.items() if k not in ("feature", "face")}
            if "feature" in event.data:
                data.pop("model", None)
            data["face"] = decision.face
            replaced = dataclasses.replace(
                event, data=data, subject=decision.subject or event.subject
            )
            out[i] = Recognised(replaced, decision.person_id)
            self._pending.append((i, device, replaced, decision))
        return out

    def stored(self, ids: Sequence[int | None]) -> None:
        """After the store: keep each recognised face's sealed probe, tie new stranger
        representatives to the event they came from."""
        conn = self.session.connection()
        probes = []
        for i, device, event, decision in self._pending:
            stored_id = ids[i] if i < len(ids) else None
            probe = decision.probe
            if stored_id is None or probe is None or probe.vector is None:
                continue
            probes.append(
                {
                    "event_id": stored_id,
                    "community_id": device.community_id,
                    "kind": event.kind.value,
                    "model": probe.model,
                    "vector_enc": seal(self.cipher, probe.vector),
                    "at": event.at,
                }
            )
            if decision.new_templates:
                conn.execute(
                    update(TEMPLATES)
                    .where(TEMPLATES.c.id.in_(decision.new_templates))
                    .values(event_id=stored_id)
                )
        if probes:
            conn.execute(insert(PROBES), probes)
        self._pending = []

    # -- steps --------------------------------------------------------------------------

    @staticmethod
    def _bears_face(event: Event) -> bool:
        """A face event (or one about a face) that carries an image or a vector, and that its
        device did not already resolve (a terminal naming the person it verified)."""
        if event.kind not in FACE_KINDS and (
            event.subject is None or event.subject.type is not SubjectType.FACE
        ):
            return False
        if event.subject is not None and event.subject.type is not SubjectType.FACE:
            return False
        return "feature" in event.data or bool(event.image_data or event.image)

    def _not_yet_stored(
        self, items: Sequence[tuple[Event, DeviceRef]], wanted: list[int]
    ) -> list[int]:
        """Leave out redelivered events (they will be duplicates): no second sighting."""
        keys = {(items[i][1].id, items[i][0].id) for i in wanted}
        stored = set(
            self.session.connection().execute(
                select(StoredEvent.device_id, StoredEvent.event_key).where(
                    StoredEvent.device_id.in_({k[0] for k in keys}),
                    StoredEvent.event_key.in_({k[1] for k in keys}),
                )
            )
        )
        return [i for i in wanted if (items[i][1].id, items[i][0].id) not in stored]

    def _probe(self, event: Event) -> Probe | None:
        """The event's face encoding; a failure is an outcome, never an exception."""
        data = event.data
        if "feature" in data:
            return self._device_vector(data.get("feature"), data.get("model"))
        image = event.image_data or (self.blob(event.image) if event.image else None)
        if not image:
            return None
        encoder = self.encoder()
        try:
            rect = data.get("face_rect") or data.get("FaceRect")
            if isinstance(rect, dict) or data.get("crop") is True:
                box = _box(image, rect) if isinstance(rect, dict) else None
                return Probe(encoder.model, encoder.encode_crop(image, box))
            found = encoder.faces(image)
        except (FaceImageError, ValueError) as exc:
            return Probe(encoder.model, outcome="error", reason=str(exc))
        except Exception:  # a broken encoder must not lose the delivery
            log.exception("face encoder failed on event %s", event.id)
            return Probe(encoder.model, outcome="error", reason="encoder failed")
        if not found:
            return Probe(encoder.model, outcome="no_face")
        largest = max(found, key=lambda f: (f.box.bottom - f.box.top) * (f.box.right - f.box.left))
        return Probe(encoder.model, largest.vector, faces=len(found))

    def _device_vector(self, feature: Any, model: Any) -> Probe:
        name = model.strip()[:40] if isinstance(model, str) else ""
        if not name:
            return Probe("", outcome="error", reason="a feature vector needs its model name")
        if not isinstance(feature, list) or not feature:
            return Probe(name, outcome="error", reason="feature must be a list of numbers")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in feature):
            return Probe(name, outcome="error", reason="feature must be a list of numbers")
        vector = np.asarray(feature, dtype=np.float32)
        if not np.all(np.isfinite(vector)):
            return Probe(name, outcome="error", reason="feature holds a NaN or an infinity")
        expected = self.galleries.dim(name)
        if expected is not None and len(vector) != expected:
            return Probe(
                name,
                outcome="error",
                reason=f"feature of length {len(vector)}; model {name} has {expected}",
            )
        return Probe(name, vector)

    def _decide(self, event: Event, device: DeviceRef, probe: Probe) -> _Decision:
        """Match one probe (under the galleries' lock): person, watch hits, stranger."""
        if probe.vector is None:
            face: dict[str, Any] = {"match": probe.outcome, "model": probe.model}
            if probe.reason:
                face["reason"] = probe.reason
            return _Decision(face)
        vector, model = probe.vector, probe.model
        g = self.galleries
        rejected = g.rejected(model, vector)
        face = {"model": model}
        if probe.faces > 1:
            face["faces"] = probe.faces
        watch = g.watch_hits(model, vector, rejected, self.settings.threshold)
        if watch:
            face["watch"] = [entry for entry, _ in watch]
        decision = _Decision(face, probe=probe)
        people = g.nearest_person(model, vector, rejected)
        person = people[0] if people else None
        if person is not None and person[1] <= self.settings.threshold:
            face.update(match="resident", distance=round(person[1], 4))
            decision.person_id = person[0]
            return decision
        nearby = g.nearest_stranger(device.community_id, model, vector, rejected)
        near = nearby[0] if nearby else None
        if near is not None and near[1] <= self.settings.stranger_threshold:
            cluster, gap = near
            self._sighted(cluster, event, vector)
            face.update(match="stranger", distance=round(gap, 4), stranger=cluster.code)
            if cluster.person_id is not None:  # linked: the cluster is that person now
                face.update(match="resident", linked=True)
                decision.person_id = cluster.person_id
            decision.subject = Subject(SubjectType.FACE, cluster.code)
            decision.new_templates = self._represent(cluster, event, vector)
            return decision
        cluster, template = self._new_cluster(device.community_id, model, event, vector)
        face.update(match="stranger", stranger=cluster.code, new=True)
        gaps = ([person[1]] if person else []) + ([near[1]] if near else [])
        nearest = min(gaps, default=None)
        if nearest is not None:
            face["distance"] = round(nearest, 4)
        decision.subject = Subject(SubjectType.FACE, cluster.code)
        decision.new_templates = [template]
        return decision

    def _sighted(self, cluster: Cluster, event: Event, vector: Vector) -> None:
        c = CLUSTERS.c
        self.session.connection().execute(
            update(CLUSTERS)
            .where(c.id == cluster.id)
            .values(
                sightings=c.sightings + 1,
                last_seen=_greatest(c.last_seen, event.at),
                first_seen=_least(c.first_seen, event.at),
            )
        )

    def _represent(self, cluster: Cluster, event: Event, vector: Vector) -> list[int]:
        """Keep the sighting as a representative when the cluster has room and it is far
        from every one kept (so a few encodings cover the face's range of looks)."""
        if len(cluster.vectors) >= MAX_REPRESENTATIVES:
            return []
        if any(distance(v, vector) < REPRESENTATIVE_SPACING for v in cluster.vectors):
            return []
        conn = self.session.connection()
        template = self._insert_template(conn, cluster, vector)

        def apply() -> None:
            cluster.vectors.append(vector)
            self.galleries._add_stranger(cluster.community_id, cluster.model, cluster.id, vector)

        self.galleries.changed(conn, community_scope(cluster.community_id), apply)
        return [template]

    def _new_cluster(
        self, community_id: int, model: str, event: Event, vector: Vector
    ) -> tuple[Cluster, int]:
        conn = self.session.connection()
        day = event.at.astimezone(ZoneInfo(self.settings.timezone)).date()
        code = next_code(conn, day)
        now = utcnow()
        ident = conn.execute(
            insert(CLUSTERS)
            .values(
                community_id=community_id,
                code=code,
                first_seen=event.at,
                last_seen=event.at,
                sightings=1,
                created_at=now,
                updated_at=now,
            )
            .returning(CLUSTERS.c.id)
        ).scalar_one()
        cluster = Cluster(int(ident), community_id, code, None, model)
        template = self._insert_template(conn, cluster, vector)

        def apply() -> None:
            self.galleries.clusters[cluster.id] = cluster
            cluster.vectors.append(vector)
            self.galleries._add_stranger(community_id, model, cluster.id, vector)

        self.galleries.changed(conn, community_scope(community_id), apply)
        log.debug("new stranger %s in community %d", code, community_id)
        return self.galleries.clusters.get(cluster.id, cluster), template

    def _insert_template(self, conn: Connection, cluster: Cluster, vector: Vector) -> int:
        ident = conn.execute(
            insert(TEMPLATES)
            .values(
                community_id=cluster.community_id,
                owner_kind=OwnerKind.STRANGER.value,
                owner_id=cluster.id,
                model=cluster.model,
                vector_enc=seal(self.cipher, vector),
                source=Source.CAPTURE.value,
                created_at=utcnow(),
            )
            .returning(TEMPLATES.c.id)
        ).scalar_one()
        return int(ident)

    def _label_people(
        self, items: Sequence[tuple[Event, DeviceRef]], decisions: dict[int, _Decision]
    ) -> None:
        """A matched person is a "resident" only where they are registered (their
        community, or an active residency there); elsewhere the match is ``"person"``.
        Watch hits keep only entries that apply to the device's community."""
        people = {d.person_id for d in decisions.values() if d.person_id is not None}
        registered: set[tuple[int, int]] = set()
        if people:
            conn = self.session.connection()
            for pid, community in conn.execute(
                select(Person.id, Person.community_id).where(Person.id.in_(people))
            ):
                registered.add((int(pid), int(community)))
            for pid, community in conn.execute(
                select(Residency.person_id, Residency.community_id).where(
                    Residency.person_id.in_(people), Residency.end_date.is_(None)
                )
            ):
                registered.add((int(pid), int(community)))
        entries = {e for d in decisions.values() for e in d.face.get("watch", [])}
        applies = _watch_scopes(self.session, entries) if entries else {}
        paths = _paths(self.session, {items[i][1].community_id for i in decisions})
        for i, d in decisions.items():
            community = items[i][1].community_id
            if d.person_id is not None and (d.person_id, community) not in registered:
                d.face["match"] = "person"
            if "watch" in d.face:
                path = paths.get(community, "")
                d.face["watch"] = [e for e in d.face["watch"] if f"/{applies.get(e, -1)}/" in path]
                if not d.face["watch"]:
                    del d.face["watch"]


def _watch_scopes(session: Session, entries: Iterable[int]) -> dict[int, int]:
    """Each watchlist entry's organisation unit (unexpired entries only)."""
    from anju.alerts.watchlist import WatchEntry

    now = utcnow()
    rows = session.connection().execute(
        select(WatchEntry.id, WatchEntry.org_unit_id).where(
            WatchEntry.id.in_(set(entries)),
            (WatchEntry.expires_at.is_(None)) | (WatchEntry.expires_at > now),
        )
    )
    return {int(e): int(u) for e, u in rows}


def _paths(session: Session, communities: Iterable[int]) -> dict[int, str]:
    rows = session.connection().execute(
        select(OrgUnit.id, OrgUnit.path).where(OrgUnit.id.in_(set(communities)))
    )
    return {int(i): str(p) for i, p in rows}


def _greatest(column: Any, value: dt.datetime) -> Any:
    return case((column < value, value), else_=column)


def _least(column: Any, value: dt.datetime) -> Any:
    return case((column > value, value), else_=column)


def _box(image: bytes, rect: dict[str, Any]) -> Box | None:
    """A device's face rectangle (Hikvision ``FaceRect``: x, y, width, height, as fractions
    of the picture, or pixels) as a box in pixels."""
    from anju.faces.encoder import decode_image

    try:
        x, y = float(rect["x"]), float(rect["y"])
        w, h = float(rect["width"]), float(rect["height"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    if max(x + w, y + h) <= 1.0:
        height, width = decode_image(image).shape[:2]
        x, w, y, h = x * width, w * width, y * height, h * height
    return Box(top=int(y), right=int(x + w), bottom=int(y + h), left=int(x))


def forget_on_rollback(session: Session, galleries: Galleries) -> None:
    """A delivery that rolls back may have changed the galleries in memory: drop them."""
    if session.info.get("anju.faces.rollback"):
        return
    session.info["anju.faces.rollback"] = True
    sa_event.listen(session, "after_rollback", lambda _s: galleries.clear())


__all__ = [
    "CONTEXT",
    "Cluster",
    "FaceRecognizer",
    "Galleries",
    "Probe",
    "Settings",
    "bump",
    "community_scope",
    "forget_on_rollback",
    "next_code",
    "seal",
    "unseal",
]

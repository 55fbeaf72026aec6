"""The event pipeline: validate → de-duplicate → (faces) → enrich → store → (after commit)
publish.

Plain Python over small interfaces (:class:`Devices`, :class:`Enricher`, :class:`Store`,
:class:`Blobs`, optionally :class:`Recognizer`); the SQL implementations live in
:mod:`anju.events.sql` (faces: :mod:`anju.faces.recognise`) and tests use fakes.
Every outcome gets a :class:`Result`: a bad event never fails the good ones beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from anju.events.model import Event, Kind, Outcome, Rejection

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class DeviceRef:
    """What the pipeline needs to know of a registered device."""

    id: int
    code: str
    community_id: int
    kind: str
    house_id: int | None = None
    active: bool = True
    name: str = ""  # what people call it (北门人脸门禁), for the live feed


@dataclass(frozen=True)
class Enrichment:
    """Who or what the event is about, resolved through the registry."""

    person_id: int | None = None
    vehicle_id: int | None = None
    house_id: int | None = None


@dataclass(frozen=True)
class Row:
    """An event ready to store."""

    event: Event
    device: DeviceRef
    enrichment: Enrichment
    received_at: dt.datetime
    image: str | None


@dataclass(frozen=True)
class Result:
    """What happened to one submitted event."""

    status: Status
    device: str | None
    id: str | None
    reason: str | None = None
    stored_id: int | None = None


@dataclass
class Processed:
    """The results, in submission order, and the rows to publish once committed."""

    results: list[Result]
    stored: list[tuple[int, Row]] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)


@dataclass(frozen=True)
class Recognised:
    """What the face step made of a face-bearing event: the event with ``data["face"]``
    (and a stranger's subject), and the person it matched."""

    event: Event
    person_id: int | None = None


class Recognizer(Protocol):
    def recognise(self, items: Sequence[tuple[Event, DeviceRef]]) -> list[Recognised | None]:
        """Each item recognised (None: no face to recognise); never raises for bad input."""
        ...

    def stored(self, ids: Sequence[int | None]) -> None:
        """The stored id of each item :meth:`recognise` was given (None: not stored)."""
        ...


class Devices(Protocol):
    def find(self, codes: Collection[str]) -> dict[str, DeviceRef]: ...


class Enricher(Protocol):
    def enrich(
        self, items: Sequence[tuple[Event, DeviceRef]], persons: Sequence[int | None] = ()
    ) -> list[Enrichment]:
        """Resolve each item; ``persons``, when given, names people already recognised
        (by face) for items whose subject names none."""
        ...


class Blobs(Protocol):
    def put(self, data: bytes) -> str: ...


class Store(Protocol):
    def insert(self, rows: Sequence[Row]) -> list[int | None]:
        """Insert rows; the stored id of each, or None where (device, id) was already stored."""
        ...

    def note_devices(
        self,
        seen: dict[int, tuple[dt.datetime, int, dict[str, float]]],
        rejected: dict[int, tuple[int, str]],
        now: dt.datetime,
    ) -> None:
        """Update device health: last seen, counts, battery/signal; rejections and reason."""
        ...


HEALTH_FIELDS = ("battery", "rsrp", "signal")


@dataclass
class Pipeline:
    """Turns adapter outcomes into stored events and per-event results."""

    devices: Devices
    enricher: Enricher
    store: Store
    blobs: Blobs
    clock: Callable[[], dt.datetime]
    faces: Recognizer | None = None  # face recognition, before enrichment

    def process(
        self,
        outcomes: Sequence[Outcome],
        *,
        may_use: Callable[[DeviceRef], bool] = lambda device: True,
    ) -> Processed:
        """Process one delivery. ``may_use`` says whether the sender may speak for a device
        (a device credential only for itself; an account only for devices in its scope)."""
        now = self.clock()
        codes = {o.device for o in outcomes if o.device}
        known = self.devices.find(codes) if codes else {}
        # Asked once per device, not per event: a delivery is mostly one device's events.
        usable = {code: device for code, device in known.items() if may_use(device)}
        results: list[Result | None] = [None] * len(outcomes)
        ready: list[int] = []  # the outcomes that go on to be stored, by position
        pairs: list[tuple[Event, DeviceRef]] = []  # and their events, with their devices
        seen_keys: dict[int, set[str]] = {}  # device id -> event ids so far
        rejected: dict[int, tuple[int, str]] = {}

        def reject(i: int, reason: str, code: str | None, ident: str | None) -> None:
            """Refuse one item; count it against its device when the sender may use it."""
            results[i] = Result("rejected", code, ident, reason)
            device = usable.get(code) if code else None
            if device is not None:
                count, _ = rejected.get(device.id, (0, reason))
                rejected[device.id] = (count + 1, reason)

        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, Rejection):
                reject(i, outcome.reason, outcome.device, outcome.id)
                continue
            device = usable.get(outcome.device)
            if device is None:
                # Unknown and not-yours look the same: existence does not leak.
                results[i] = Result("rejected", outcome.device, outcome.id, "unknown device")
                continue
            if not device.active:
                reject(i, "device is disabled or retired", device.code, outcome.id)
                continue
            ids = seen_keys.get(device.id)
            if ids is None:
                ids = seen_keys[device.id] = set()
            elif outcome.id in ids:
                results[i] = Result("duplicate", device.code, outcome.id)
                continue
            ids.add(outcome.id)
            ready.append(i)
            pairs.append((outcome, device))

        persons: list[int | None] = []
        if self.faces is not None and ready:
            # Encoding happens here, before the store's first write takes the write lock.
            recognised = self.faces.recognise(list(pairs))
            for k, found in enumerate(recognised):
                if found is not None:
                    pairs[k] = (found.event, pairs[k][1])
            persons = [found.person_id if found else None for found in recognised]
        if any(p is not None for p in persons):
            enrichments = self.enricher.enrich(pairs, persons)
        else:
            enrichments = self.enricher.enrich(pairs) if ready else []
        put = self.blobs.put
        rows = [
            Row(
                event,
                device,
                enrichment,
                now,
                event.image or (put(event.image_data) if event.image_data else None),
            )
            for (event, device), enrichment in zip(pairs, enrichments, strict=True)
        ]
        stored_ids = self.store.insert(rows) if rows else []
        if self.faces is not None and ready:
            self.faces.stored(stored_ids)
        processed = Processed(results=[])
        stored = processed.stored
        # device id -> [last seen, accepted, health]; one list per device, not per event
        heard: dict[int, list[Any]] = {}
        for i, row, stored_id in zip(ready, rows, stored_ids, strict=True):
            event, device = row.event, row.device
            if stored_id is None:
                results[i] = Result("duplicate", device.code, event.id)
                continue
            results[i] = Result("accepted", device.code, event.id, None, stored_id)
            stored.append((stored_id, row))
            if event.kind is _OFFLINE:
                continue  # word that a device is gone (a carrier's, the tick's) is not hearing it
            # A device clock running ahead must not make it look seen in the future.
            when = now if now < event.at else event.at
            so_far = heard.get(device.id)
            if so_far is None:
                so_far = heard[device.id] = [when, 0, {}]
            elif when > so_far[0]:
                so_far[0] = when
            so_far[1] += 1
            if not _HEALTH.isdisjoint(event.data):
                so_far[2].update(_health(event))
        seen = {
            device_id: (last, count, health) for device_id, (last, count, health) in heard.items()
        }
        self.store.note_devices(seen, rejected, now)
        processed.results = [r for r in results if r is not None]
        return processed


_OFFLINE = Kind.DEVICE_OFFLINE
_HEALTH = frozenset(HEALTH_FIELDS)


def _health(event: Event) -> dict[str, float]:
    """Battery and signal a device reported with an event."""
    out: dict[str, float] = {}
    for name in HEALTH_FIELDS:
        value = event.data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out["signal" if name == "rsrp" else name] = float(value)
    return out

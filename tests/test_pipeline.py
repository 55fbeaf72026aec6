"""The pipeline's logic with fakes: no database, no clock but the one passed in."""

from __future__ import annotations

import datetime as dt

from anju.events.model import Event, Kind, Rejection, Subject, SubjectType
from anju.events.pipeline import DeviceRef, Enrichment, Pipeline

NOW = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)


class FakeDevices:
    def __init__(self, *refs: DeviceRef) -> None:
        self.refs = {r.code: r for r in refs}

    def find(self, codes):
        return {c: self.refs[c] for c in codes if c in self.refs}


class FakeEnricher:
    def enrich(self, items):
        return [Enrichment(person_id=7 if e.subject else None) for e, _ in items]


class FakeStore:
    """Keeps (device, id) keys like the unique index does."""

    def __init__(self) -> None:
        self.keys: dict[tuple[int, str], int] = {}
        self.seen: dict = {}
        self.rejected: dict = {}

    def insert(self, rows):
        out = []
        for row in rows:
            key = (row.device.id, row.event.id)
            if key in self.keys:
                out.append(None)
            else:
                self.keys[key] = len(self.keys) + 1
                out.append(self.keys[key])
        return out

    def note_devices(self, seen, rejected, now):
        self.seen.update(seen)
        for device_id, (count, reason) in rejected.items():
            old = self.rejected.get(device_id, (0, ""))[0]
            self.rejected[device_id] = (old + count, reason)


class FakeBlobs:
    def put(self, data: bytes) -> str:
        return f"blob-{len(data)}"


GATE = DeviceRef(1, "GATE", community_id=10, kind="face_gate")
OTHER = DeviceRef(2, "OTHER", community_id=20, kind="face_gate")
OFF = DeviceRef(3, "OFF", community_id=10, kind="face_gate", active=False)


def make(store: FakeStore) -> Pipeline:
    return Pipeline(FakeDevices(GATE, OTHER, OFF), FakeEnricher(), store, FakeBlobs(), lambda: NOW)


def ev(device: str, ident: str, **kw) -> Event:
    return Event(device=device, kind=Kind.ACCESS_CARD, at=NOW, id=ident, **kw)


def test_each_item_gets_its_own_result_in_order():
    store = FakeStore()
    outcomes = [
        ev("GATE", "a", subject=Subject(SubjectType.CARD, "1")),
        Rejection("kind: unknown", device="GATE", id="b"),
        ev("NOPE", "c"),
        ev("GATE", "a"),  # the same id twice in one batch
        ev("OFF", "d"),
        ev("GATE", "e", image_data=b"\xff\xd8jpeg\xff\xd9", data={"battery": 88, "rsrp": -95}),
    ]
    done = make(store).process(outcomes)
    assert [r.status for r in done.results] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert done.results[2].reason == "unknown device"
    assert done.results[4].reason == "device is disabled or retired"
    assert store.rejected == {1: (1, "kind: unknown"), 3: (1, "device is disabled or retired")}
    _last, count, health = store.seen[1]
    assert count == 2 and health == {"battery": 88.0, "signal": -95.0}
    rows = dict(done.stored)
    assert rows[1].enrichment.person_id == 7 and rows[2].image == "blob-8"


def test_redelivery_is_a_duplicate_not_an_error():
    store = FakeStore()
    pipeline = make(store)
    first = pipeline.process([ev("GATE", "x"), ev("GATE", "y")])
    again = pipeline.process([ev("GATE", "x"), ev("GATE", "y"), ev("GATE", "z")])
    assert first.count("accepted") == 2
    assert [r.status for r in again.results] == ["duplicate", "duplicate", "accepted"]


def test_a_sender_speaks_only_for_devices_it_may_use():
    store = FakeStore()
    done = make(store).process(
        [ev("GATE", "1"), ev("OTHER", "2")], may_use=lambda d: d.community_id == 10
    )
    assert [r.status for r in done.results] == ["accepted", "rejected"]
    assert (
        done.results[1].reason == "unknown device"
    )  # the same words as a device that does not exist
    assert 2 not in store.rejected  # not counted against a device the sender may not use


def test_device_time_in_the_future_does_not_move_last_seen_past_now():
    store = FakeStore()
    make(store).process(
        [Event(device="GATE", kind=Kind.DEVICE_HEARTBEAT, at=NOW + dt.timedelta(minutes=4), id="h")]
    )
    assert store.seen[1][0] == NOW

"""SQL implementations of the pipeline's interfaces, on one session's connection.

Inserts and device-health updates go through the connection (Core), not the ORM: they are
batched, and device health is bookkeeping, not a registry change for the audit log.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Sequence
from itertools import chain
from typing import Any

import orjson
import psycopg
from sqlalchemy import ARRAY, String, any_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from anju.devices.models import Device, DeviceStatus
from anju.events.model import Direction, Event, Kind, SubjectType
from anju.events.models import AccessCredential, CredentialKind
from anju.events.pipeline import DeviceRef, Enrichment, Row
from anju.registry.models import Residency, Vehicle

INACTIVE = (DeviceStatus.INACTIVE.value, DeviceStatus.RETIRED.value)
CREDENTIAL_KIND = {
    SubjectType.CARD: CredentialKind.CARD,
    SubjectType.QR: CredentialKind.QR,
    SubjectType.MAC: CredentialKind.MAC,
    SubjectType.TAG: CredentialKind.TAG,
    SubjectType.PERSON: CredentialKind.EMPLOYEE_NO,
}
# Per-event look-ups without the enum's ``.value`` (a Python-level property, ~0.15 µs each).
_CREDENTIAL = {subject: kind.value for subject, kind in CREDENTIAL_KIND.items()}
_LOCK_CODE = CredentialKind.LOCK_CODE.value
_PLATE = SubjectType.PLATE
_KIND = {kind: kind.value for kind in Kind}
_SUBJECT_TYPE = {kind: kind.value for kind in SubjectType}
_DIRECTION = {direction: direction.value for direction in Direction}


class SqlDevices:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, codes: Collection[str]) -> dict[str, DeviceRef]:
        rows = self.session.execute(
            select(
                Device.id,
                Device.code,
                Device.community_id,
                Device.kind,
                Device.house_id,
                Device.status,
                Device.name,
            ).where(Device.code.in_(list(codes)))
        )
        return {
            r.code: DeviceRef(
                id=r.id,
                code=r.code,
                community_id=r.community_id,
                kind=str(r.kind.value),
                house_id=r.house_id,
                active=r.status.value not in INACTIVE,
                name=r.name,
            )
            for r in rows
        }


class SqlEnricher:
    """Resolves subjects through the registry in a few batched queries per delivery."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def enrich(
        self, items: Sequence[tuple[Event, DeviceRef]], persons: Sequence[int | None] = ()
    ) -> list[Enrichment]:
        wanted: set[tuple[int, str, str]] = set()
        plates: set[str] = set()
        for event, device in items:
            subject = event.subject
            if subject is None:
                pass  # a lock's credential below may still name the person
            elif subject.type is _PLATE:
                plates.add(subject.value)
            elif subject.type in CREDENTIAL_KIND:
                wanted.add((device.community_id, _CREDENTIAL[subject.type], subject.value))
            credential = event.data.get("credential")
            if isinstance(credential, str) and credential:
                wanted.add((device.community_id, _LOCK_CODE, credential))
        people: dict[tuple[int, str, str], int] = {}
        if wanted:
            found = self.session.execute(
                select(
                    AccessCredential.community_id,
                    AccessCredential.kind,
                    AccessCredential.value,
                    AccessCredential.person_id,
                ).where(
                    # Three plain INs (and an exact match below) instead of a tuple IN, which
                    # SQLAlchemy expands parameter by parameter on every delivery.
                    AccessCredential.community_id.in_({w[0] for w in wanted}),
                    AccessCredential.kind.in_({CredentialKind(w[1]) for w in wanted}),
                    one_of(self.session, AccessCredential.value, {w[2] for w in wanted}),
                )
            )
            people = {(r[0], r[1].value, r[2]): r[3] for r in found}
        vehicles: dict[str, tuple[int, int | None]] = {}
        if plates:
            cars = self.session.execute(
                select(Vehicle.plate, Vehicle.id, Vehicle.owner_id).where(
                    one_of(self.session, Vehicle.plate, plates)
                )
            )
            vehicles = {r[0]: (r[1], r[2]) for r in cars}
        links: list[tuple[int | None, int | None, int | None]] = []
        person_ids: set[int] = set()
        for index, (event, device) in enumerate(items):
            person_id = vehicle_id = None
            subject = event.subject
            if subject is None:
                pass
            elif subject.type is _PLATE:
                vehicle_id, person_id = vehicles.get(subject.value, (None, None))
            elif subject.type in CREDENTIAL_KIND:
                person_id = people.get(
                    (device.community_id, _CREDENTIAL[subject.type], subject.value)
                )
            if person_id is None:
                credential = event.data.get("credential")
                if isinstance(credential, str):
                    person_id = people.get((device.community_id, _LOCK_CODE, credential))
                if person_id is None and index < len(persons):
                    person_id = persons[index]  # recognised by face
            if person_id is not None:
                person_ids.add(person_id)
            links.append((person_id, vehicle_id, device.house_id))
        homes = self._homes(person_ids) if person_ids else {}
        # Equal enrichments are one object: they are immutable, and a batch names the same
        # few people and cars many times.
        shared: dict[tuple[int | None, int | None, int | None], Enrichment] = {}
        out: list[Enrichment] = []
        for link in links:
            enrichment = shared.get(link)
            if enrichment is None:
                person_id, vehicle_id, house_id = link
                if house_id is None and person_id is not None:
                    house_id = homes.get(person_id)  # the device's house, else the person's
                enrichment = shared[link] = Enrichment(person_id, vehicle_id, house_id)
            out.append(enrichment)
        return out

    def _homes(self, person_ids: set[int]) -> dict[int, int]:
        """Each person's current house (the earliest active residency)."""
        rows = self.session.execute(
            select(Residency.person_id, Residency.house_id)
            .where(
                one_of(self.session, Residency.person_id, person_ids),
                Residency.end_date.is_(None),
            )
            .order_by(Residency.start_date)
        )
        homes: dict[int, int] = {}
        for person_id, house_id in rows:
            homes.setdefault(person_id, house_id)
        return homes


def one_of(session: Session, column: Any, values: Collection[Any]) -> Any:
    """``column IN values`` with the values as one bound parameter: an array on PostgreSQL
    (``= ANY``), a JSON array on SQLite (``IN (SELECT value FROM json_each(…))``). A plain
    ``IN`` binds each value as its own parameter and renders the statement anew for every
    delivery; with a batch's few hundred cards, plates and people that cost more than the
    queries themselves."""
    items = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, items, type_=ARRAY(column.type)))
    listed = func.json_each(bindparam(None, _json(items), type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


class SqlStore:
    """Batch insert with ``ON CONFLICT DO NOTHING``: the same (device, id) is stored once,
    across restarts and concurrent deliveries, decided by the database's unique index."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, rows: Sequence[Row]) -> list[int | None]:
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            return self._copy_insert(conn, rows)
        return self._sqlite_insert(conn, rows)

    @staticmethod
    def _sqlite_insert(conn: Any, rows: Sequence[Row]) -> list[int | None]:
        """SQLite: multi-row ``INSERT … ON CONFLICT DO NOTHING`` as driver SQL, with values
        already in SQLite's stored form (the ORM's per-value type processing cost more than
        the insert itself). Still through the connection, so the transaction starts as
        ``BEGIN IMMEDIATE`` like every other write.

        The ids need no ``RETURNING`` (which made the insert ~20 % slower): the transaction
        holds the write lock, and SQLite gives each new row the next id up, so the rows this
        statement stored are the newest ``n`` ids, in order. When all were stored (live
        traffic rarely repeats itself) they are the batch's; otherwise the stored ones are
        read back by (device, key)."""
        values: list[tuple[Any, ...]] = []
        append = values.append
        received: dt.datetime | None = None
        received_text = ""
        for row in rows:
            if row.received_at is not received:  # one time for the whole delivery
                received = row.received_at
                received_text = sqlite_time(received)
            append(_row_values(row, sqlite_time(row.event.at), received_text))
        raw = conn.connection.driver_connection
        before = raw.total_changes
        for start in range(0, len(values), _SQLITE_ROWS_PER_STATEMENT):
            chunk = values[start : start + _SQLITE_ROWS_PER_STATEMENT]
            conn.exec_driver_sql(_sqlite_insert_sql(len(chunk)), tuple(chain.from_iterable(chunk)))
        stored = raw.total_changes - before
        if stored == 0:
            return [None] * len(rows)
        newest = conn.exec_driver_sql("SELECT max(id) FROM events").scalar_one()
        if stored == len(rows):
            return list(range(newest - stored + 1, newest + 1))
        found = conn.exec_driver_sql(
            "SELECT id, device_id, event_key FROM events WHERE id > ?", (newest - stored,)
        )
        ids = {(device_id, key): ident for ident, device_id, key in found}
        return [ids.get((row.device.id, row.event.id)) for row in rows]

    @staticmethod
    def _copy_insert(conn: Any, rows: Sequence[Row]) -> list[int | None]:
        """PostgreSQL: COPY the batch straight into ``events`` with ids drawn beforehand;
        if any row is already stored (a redelivery), undo that COPY and let
        ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` from a staging table decide
        row by row. Live traffic rarely repeats itself, so most batches take the first path,
        which costs what a plain COPY costs; the database's unique index decides either way,
        so concurrent deliveries of the same events stay safe."""
        raw = conn.connection.driver_connection
        columns = ", ".join(_COPY_COLUMNS)
        values = [_row_values(row, row.event.at, row.received_at) for row in rows]
        with raw.cursor() as cur:
            ids = [
                int(r[0])
                for r in cur.execute(
                    "SELECT nextval(pg_get_serial_sequence('events', 'id')) "
                    "FROM generate_series(1, %s)",
                    (len(values),),
                )
            ]
            cur.execute("SAVEPOINT anju_events_copy")
            try:
                with cur.copy(f"COPY events (id, {columns}) FROM STDIN") as copy:
                    write = copy.write_row
                    for ident, row_values in zip(ids, values, strict=True):
                        write((ident, *row_values))
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT anju_events_copy")
            else:
                cur.execute("RELEASE SAVEPOINT anju_events_copy")
                return list(ids)  # every row stored, in order
            # Only the copied columns, no constraints or defaults (no ids drawn for staging).
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_staging ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM events WITH NO DATA"
            )
            cur.execute("TRUNCATE events_staging")
            with cur.copy(f"COPY events_staging ({columns}) FROM STDIN") as copy:
                for row_values in values:
                    copy.write_row(row_values)
            cur.execute(
                f"INSERT INTO events ({columns}) SELECT {columns} FROM events_staging "
                "ON CONFLICT (device_id, event_key, at) DO NOTHING "  # the partitioned key
                "RETURNING id, device_id, event_key"
            )
            stored = {(int(r[1]), str(r[2])): int(r[0]) for r in cur.fetchall()}
        return [stored.get((row.device.id, row.event.id)) for row in rows]

    def note_devices(
        self,
        seen: dict[int, tuple[dt.datetime, int, dict[str, float]]],
        rejected: dict[int, tuple[int, str]],
        now: dt.datetime,
    ) -> None:
        conn = self.session.connection()
        for device_id, (last, count, health) in seen.items():
            values: dict[str, Any] = {
                "events_accepted": Device.events_accepted + count,
                "last_seen_at": case(
                    (or_(Device.last_seen_at.is_(None), Device.last_seen_at < last), last),
                    else_=Device.last_seen_at,
                ),
            }
            values.update({k: v for k, v in health.items() if k in ("battery", "signal")})
            conn.execute(update(Device).where(Device.id == device_id).values(**values))
        for device_id, (count, reason) in rejected.items():
            conn.execute(
                update(Device)
                .where(Device.id == device_id)
                .values(
                    events_rejected=Device.events_rejected + count,
                    last_rejection=reason[:300],
                    last_rejected_at=now,
                )
            )


_COPY_COLUMNS = (
    "community_id",
    "device_id",
    "event_key",
    "kind",
    "at",
    "received_at",
    "subject_type",
    "subject_value",
    "direction",
    "value",
    "data",
    "image",
    "history",
    "person_id",
    "vehicle_id",
    "house_id",
)


# SQLite allows 32,766 bound values per statement: 16 columns x 1,000 rows stays well under.
_SQLITE_ROWS_PER_STATEMENT = 1000


@functools.cache
def _sqlite_insert_sql(rows: int) -> str:
    """One statement for many rows: SQLite runs it in one step, which releases the
    interpreter once; ``executemany`` would take it back between every two rows, and
    with another request's thread busy, each time wait for it."""
    one = "(" + ", ".join("?" * len(_COPY_COLUMNS)) + ")"
    return (
        f"INSERT INTO events ({', '.join(_COPY_COLUMNS)}) VALUES "
        + ", ".join([one] * rows)
        + " ON CONFLICT (device_id, event_key) DO NOTHING"
    )


def sqlite_time(value: dt.datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite: UTC, in one fixed text format (SQLite
    compares times as text, so every writer must use the same one)."""
    if value.tzinfo is dt.UTC:  # the usual case: the text less its "+00:00"
        return value.isoformat(" ", "microseconds")[:26]
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_value(value: Any) -> Any:
    """Any column value in the form SQLite stores it (times as text, JSON as text)."""
    if isinstance(value, dt.datetime):
        return sqlite_time(value)
    if isinstance(value, dict):
        return _json(value)
    return value


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson refuses
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row_values(row: Row, at: Any, received_at: Any) -> tuple[Any, ...]:
    """One row's values in ``_COPY_COLUMNS`` order, with its times as given (SQLite wants
    them as text) and ``data`` as JSON text."""
    event = row.event
    subject = event.subject
    device = row.device
    enrichment = row.enrichment
    return (
        device.community_id,
        device.id,
        event.id,
        _KIND[event.kind],
        at,
        received_at,
        _SUBJECT_TYPE[subject.type] if subject is not None else None,
        subject.value if subject is not None else None,
        _DIRECTION[event.direction] if event.direction is not None else None,
        event.value,
        _json(event.data),
        row.image,
        event.history,
        enrichment.person_id,
        enrichment.vehicle_id,
        enrichment.house_id,
    )

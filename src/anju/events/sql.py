"""SQL implementations of the pipeline's interfaces, on one session's connection.

Inserts and device-health updates go through the connection (Core), not the ORM: they are
batched, and device health is bookkeeping, not a registry change for the audit log.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import psycopg
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from anju.devices.models import Device, DeviceStatus
from anju.events.model import Event, SubjectType
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
            elif subject.type is SubjectType.PLATE:
                plates.add(subject.value)
            elif subject.type in CREDENTIAL_KIND:
                wanted.add(
                    (device.community_id, CREDENTIAL_KIND[subject.type].value, subject.value)
                )
            credential = event.data.get("credential")
            if isinstance(credential, str) and credential:
                wanted.add((device.community_id, CredentialKind.LOCK_CODE.value, credential))
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
                    AccessCredential.value.in_({w[2] for w in wanted}),
                )
            )
            people = {(r[0], r[1].value, r[2]): r[3] for r in found}
        vehicles: dict[str, tuple[int, int | None]] = {}
        if plates:
            cars = self.session.execute(
                select(Vehicle.plate, Vehicle.id, Vehicle.owner_id).where(Vehicle.plate.in_(plates))
            )
            vehicles = {r[0]: (r[1], r[2]) for r in cars}
        out: list[Enrichment] = []
        person_ids: set[int] = set()
        for index, (event, device) in enumerate(items):
            person_id = vehicle_id = None
            subject = event.subject
            if subject is not None and subject.type is SubjectType.PLATE:
                vehicle_id, person_id = vehicles.get(subject.value, (None, None))
            elif subject is not None and subject.type in CREDENTIAL_KIND:
                person_id = people.get(
                    (device.community_id, CREDENTIAL_KIND[subject.type].value, subject.value)
                )
            credential = event.data.get("credential")
            if person_id is None and isinstance(credential, str):
                person_id = people.get(
                    (device.community_id, CredentialKind.LOCK_CODE.value, credential)
                )
            if person_id is None and index < len(persons):
                person_id = persons[index]  # recognised by face
            if person_id is not None:
                person_ids.add(person_id)
            out.append(
                Enrichment(person_id=person_id, vehicle_id=vehicle_id, house_id=device.house_id)
            )
        homes = self._homes(person_ids) if person_ids else {}
        return [
            e
            if e.house_id is not None or e.person_id is None
            else Enrichment(e.person_id, e.vehicle_id, homes.get(e.person_id))
            for e in out
        ]

    def _homes(self, person_ids: set[int]) -> dict[int, int]:
        """Each person's current house (the earliest active residency)."""
        rows = self.session.execute(
            select(Residency.person_id, Residency.house_id)
            .where(Residency.person_id.in_(person_ids), Residency.end_date.is_(None))
            .order_by(Residency.start_date)
        )
        homes: dict[int, int] = {}
        for person_id, house_id in rows:
            homes.setdefault(person_id, house_id)
        return homes


class SqlStore:
    """Batch insert with ``ON CONFLICT DO NOTHING``: the same (device, id) is stored once,
    across restarts and concurrent deliveries, decided by the database's unique index."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, rows: Sequence[Row]) -> list[int | None]:
        values = [_values(row) for row in rows]
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            found = self._copy_insert(conn, values)
        else:
            found = self._sqlite_insert(conn, values)
        stored = {(device_id, key): ident for ident, device_id, key in found}
        return [stored.get((row.device.id, row.event.id)) for row in rows]

    @staticmethod
    def _sqlite_insert(conn: Any, values: list[tuple[Any, ...]]) -> list[tuple[int, int, str]]:
        """SQLite: multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` as driver SQL,
        with values already in SQLite's stored form (the ORM's per-value type processing
        cost more than the insert itself). Still through the connection, so the
        transaction starts as ``BEGIN IMMEDIATE`` like every other write."""
        found: list[tuple[int, int, str]] = []
        for start in range(0, len(values), _SQLITE_ROWS_PER_STATEMENT):
            chunk = values[start : start + _SQLITE_ROWS_PER_STATEMENT]
            params: list[Any] = []
            for row in chunk:
                params.extend(row)
                params[-_AT_FROM_END] = sqlite_time(row[_AT])
                params[-_RECEIVED_FROM_END] = sqlite_time(row[_RECEIVED])
                params[-_DATA_FROM_END] = _json(row[_DATA])
            result = conn.exec_driver_sql(_sqlite_insert_sql(len(chunk)), tuple(params))
            found.extend((int(r[0]), int(r[1]), str(r[2])) for r in result)
        return found

    @staticmethod
    def _copy_insert(conn: Any, values: list[tuple[Any, ...]]) -> list[tuple[int, int, str]]:
        """PostgreSQL: COPY the batch straight into ``events`` with ids drawn beforehand;
        if any row is already stored (a redelivery), undo that COPY and let
        ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` from a staging table decide
        row by row. Live traffic rarely repeats itself, so most batches take the first path,
        which costs what a plain COPY costs; the database's unique index decides either way,
        so concurrent deliveries of the same events stay safe."""
        raw = conn.connection.driver_connection
        columns = ", ".join(_COPY_COLUMNS)
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
                    for ident, row in zip(ids, values, strict=True):
                        copy.write_row((ident, *row[:_DATA], _json(row[_DATA]), *row[_DATA + 1 :]))
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT anju_events_copy")
            else:
                cur.execute("RELEASE SAVEPOINT anju_events_copy")
                return [(ident, row[1], row[2]) for ident, row in zip(ids, values, strict=True)]
            # Only the copied columns, no constraints or defaults (no ids drawn for staging).
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_staging ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM events WITH NO DATA"
            )
            cur.execute("TRUNCATE events_staging")
            with cur.copy(f"COPY events_staging ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row((*row[:_DATA], _json(row[_DATA]), *row[_DATA + 1 :]))
            cur.execute(
                f"INSERT INTO events ({columns}) SELECT {columns} FROM events_staging "
                "ON CONFLICT (device_id, event_key, at) DO NOTHING "  # the partitioned key
                "RETURNING id, device_id, event_key"
            )
            return [(int(r[0]), int(r[1]), str(r[2])) for r in cur.fetchall()]

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


_AT, _RECEIVED, _DATA = (_COPY_COLUMNS.index(c) for c in ("at", "received_at", "data"))
_AT_FROM_END, _RECEIVED_FROM_END, _DATA_FROM_END = (
    len(_COPY_COLUMNS) - i for i in (_AT, _RECEIVED, _DATA)
)
# SQLite allows 32,766 bound values per statement: 16 columns x 1,000 rows stays well under.
_SQLITE_ROWS_PER_STATEMENT = 1000


@functools.cache
def _sqlite_insert_sql(rows: int) -> str:
    one = "(" + ", ".join("?" * len(_COPY_COLUMNS)) + ")"
    return (
        f"INSERT INTO events ({', '.join(_COPY_COLUMNS)}) VALUES "
        + ", ".join([one] * rows)
        + " ON CONFLICT (device_id, event_key) DO NOTHING RETURNING id, device_id, event_key"
    )


def sqlite_time(value: dt.datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite: UTC, in one fixed text format (SQLite
    compares times as text, so every writer must use the same one)."""
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


def _values(row: Row) -> tuple[Any, ...]:
    """One row's values in ``_COPY_COLUMNS`` order."""
    event = row.event
    subject = event.subject
    return (
        row.device.community_id,
        row.device.id,
        event.id,
        event.kind.value,
        event.at,
        row.received_at,
        subject.type.value if subject else None,
        subject.value if subject else None,
        event.direction.value if event.direction else None,
        event.value,
        event.data,
        row.image,
        event.history,
        row.enrichment.person_id,
        row.enrichment.vehicle_id,
        row.enrichment.house_id,
    )

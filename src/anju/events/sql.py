"""SQL implementations of the pipeline's interfaces, on one session's connection.

Inserts and device-health updates go through the connection (Core), not the ORM: they are
batched, and device health is bookkeeping, not a registry change for the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import case, or_, select, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from anju.devices.models import Device, DeviceStatus
from anju.events.model import Event, SubjectType
from anju.events.models import AccessCredential, CredentialKind, StoredEvent
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
            )
            for r in rows
        }


class SqlEnricher:
    """Resolves subjects through the registry in a few batched queries per delivery."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def enrich(self, items: Sequence[tuple[Event, DeviceRef]]) -> list[Enrichment]:
        wanted: set[tuple[int, str, str]] = set()
        plates: set[str] = set()
        for event, device in items:
            subject = event.subject
            if subject is None:
                continue
            if subject.type is SubjectType.PLATE:
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
                    tuple_(
                        AccessCredential.community_id, AccessCredential.kind, AccessCredential.value
                    ).in_(list(wanted))
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
        for event, device in items:
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
            table: Any = StoredEvent.__table__
            stmt: Any = sqlite.insert(table).on_conflict_do_nothing(
                index_elements=["device_id", "event_key"]
            )
            stmt = stmt.returning(table.c.id, table.c.device_id, table.c.event_key)
            found = [(r.id, r.device_id, r.event_key) for r in conn.execute(stmt, values)]
        stored = {(device_id, key): ident for ident, device_id, key in found}
        return [stored.get((row.device.id, row.event.id)) for row in rows]

    @staticmethod
    def _copy_insert(conn: Any, values: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
        """PostgreSQL: COPY the batch into a session-local staging table, then one
        ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``. One multi-row INSERT with
        thousands of placeholders is re-parsed client-side on every batch; COPY is not."""
        raw = conn.connection.driver_connection
        columns = ", ".join(_COPY_COLUMNS)
        with raw.cursor() as cur:
            # Only the copied columns, no constraints or defaults (no ids drawn for staging).
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_staging ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM events WITH NO DATA"
            )
            cur.execute("TRUNCATE events_staging")
            with cur.copy(f"COPY events_staging ({columns}) FROM STDIN") as copy:
                for v in values:
                    copy.write_row(
                        [
                            json.dumps(v[c], ensure_ascii=False) if c == "data" else v[c]
                            for c in _COPY_COLUMNS
                        ]
                    )
            cur.execute(
                f"INSERT INTO events ({columns}) SELECT {columns} FROM events_staging "
                "ON CONFLICT (device_id, event_key) DO NOTHING "
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


def _values(row: Row) -> dict[str, Any]:
    event = row.event
    return {
        "community_id": row.device.community_id,
        "device_id": row.device.id,
        "event_key": event.id,
        "kind": event.kind.value,
        "at": event.at,
        "received_at": row.received_at,
        "subject_type": event.subject.type.value if event.subject else None,
        "subject_value": event.subject.value if event.subject else None,
        "direction": event.direction.value if event.direction else None,
        "value": event.value,
        "data": event.data,
        "image": row.image,
        "history": event.history,
        "person_id": row.enrichment.person_id,
        "vehicle_id": row.enrichment.vehicle_id,
        "house_id": row.enrichment.house_id,
    }

"""Real faces in the demo: a few photographs lived through the real encoder.

The simulator's faces are synthetic vectors (``anju.sim.faces``): right for scoring the alert
models, but an officer cannot search them with a photo. This module puts real face crops
(``photos/``, from the MIT-licensed test photographs; see ``photos/SOURCES.md``) into the
demo so every face feature can be tried by hand:

- the demo resident is enrolled with a registration photo and captured at a gate camera a few
  times a day: recognised as that resident (dlib's model, not the simulator's);
- a key person (重点人员) is put on the watchlist by photo and passes the camera once in the
  evening: a police-only alert;
- two strangers come back every day with other photos of themselves: each keeps one
  ``S-…`` code across days, and one hangs about the gate in the afternoon long enough for the
  loitering model;
- ``photos/obama5.jpg`` is never sent: upload it in 以图搜人 to find the resident and where
  they have been.

Captures carry the crop as the event's image with ``data.crop`` (GA/T 1400 face sub-image),
so recognition encodes without detection (tens of milliseconds a face).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from anju.bootstrap import Node
from anju.sim.life import SimEvent, World

log = logging.getLogger(__name__)

PHOTOS = Path(__file__).parent / "photos"
RESIDENT_PHOTO = "obama1.jpg"  # the registration photo
RESIDENT_SIGHTINGS = ("obama2.jpg", "obama3.jpg", "obama4.jpg")
SEARCH_PHOTO = "obama5.jpg"  # never sent: for 以图搜人
WATCHED_PHOTO = "biden1.jpg"
WATCHED_SIGHTINGS = ("biden2.jpg",)
STRANGERS = {"alex": ("alex1.jpg", "alex2.jpg", "alex3.jpg"), "kit": ("kit1.jpg", "kit2.jpg")}
LOITERER = "alex"
LOITER_HOUR = 15  # the loiterer circles the gate from a few minutes past three
VISITING_HOURS = (9, 10, 11, 12, 17, 18)  # strangers' other visits, clear of the loitering
WATCH_CATEGORY = "在逃人员"
WATCH_VALUE = "演示人像"  # the entry's label; the face itself is its enrolled photo


@dataclass(frozen=True)
class RealFaces:
    """Where the real faces pass: one gate's capture camera."""

    camera: str

    def day(self, date: dt.date, tz: dt.tzinfo, seed: int) -> list[SimEvent]:
        """The day's captures of real faces, in time order (deterministic per date)."""
        rng = random.Random(f"{seed}|{date.isoformat()}|real-faces")
        out: list[SimEvent] = []

        def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
            return dt.datetime.combine(date, dt.time(hour, minute, second), tz)

        # The resident: out in the morning, back at noon and in the evening.
        for hour in (7, 12, 19):
            photo = rng.choice(RESIDENT_SIGHTINGS)
            out.append(self._capture(at(hour, rng.randrange(60), rng.randrange(60)), photo))
        # Strangers come by now and then; the loiterer circles the gate for half an hour.
        for photos in STRANGERS.values():
            for hour in rng.sample(VISITING_HOURS, 2):
                out.append(self._capture(at(hour, rng.randrange(60)), rng.choice(photos)))
        start = at(LOITER_HOUR, rng.randrange(10))
        for n in range(7):
            when = start + dt.timedelta(minutes=5 * n, seconds=rng.randrange(60))
            out.append(self._capture(when, STRANGERS[LOITERER][n % len(STRANGERS[LOITERER])]))
        # The key person, once, in the evening.
        out.append(self._capture(at(21, rng.randrange(60)), rng.choice(WATCHED_SIGHTINGS)))
        out.sort(key=lambda e: e.at)
        return out

    def _capture(self, at: dt.datetime, photo: str) -> SimEvent:
        data = (PHOTOS / photo).read_bytes()
        ident = hashlib.sha1(f"{self.camera}|{at.isoformat()}|{photo}".encode()).hexdigest()[:20]
        body = {
            "id": f"rf-{ident}",
            "device": self.camera,
            "kind": "capture.face",
            "at": at.isoformat(),
            "subject": {"type": "face", "value": f"T{ident[:10]}"},
            "data": {"crop": True, "quality": 0.9},
            "image": base64.b64encode(data).decode(),
        }
        return SimEvent(at, self.camera, body, who=photo.split(".")[0].rstrip("0123456789"))


def camera_of(world: World) -> str | None:
    """The first gate's face capture camera, if the community has one."""
    return next((g.camera for g in world.gates if g.camera), None)


def enrol(node: Node, community_id: int, person_id: int) -> None:
    """Enrol the resident's registration photo and put the key person on the community's
    watchlist by photo — once: a second start finds both."""
    from anju.alerts.watchlist import MatchType, WatchEntry, WatchList, add_entry
    from anju.faces.models import FaceTemplate, OwnerKind

    with node.unit_of_work() as ctx:
        # The simulator has already enrolled a synthetic face for everyone: look for a photo's.
        by_photo = ctx.session.scalar(
            select(FaceTemplate.id).where(
                FaceTemplate.owner_kind == OwnerKind.PERSON.value,
                FaceTemplate.owner_id == person_id,
                FaceTemplate.model == node.faces.encoder().model,
            )
        )
        if by_photo is None:
            node.faces.enroll(ctx, person_id, [(PHOTOS / RESIDENT_PHOTO).read_bytes()])
        entry = ctx.session.scalar(
            select(WatchEntry).where(
                WatchEntry.org_unit_id == community_id,
                WatchEntry.match_type == MatchType.FACE,
                WatchEntry.match_value == WATCH_VALUE,
            )
        )
        if entry is None:
            entry = add_entry(
                ctx.session,
                org_unit_id=community_id,
                list_kind=WatchList.KEY_PERSON,
                category=WATCH_CATEGORY,
                reason="演示：以照片布控的重点人员",
                match_type=MatchType.FACE,
                value=WATCH_VALUE,
            )
            node.faces.enroll_watch(ctx, entry.id, [(PHOTOS / WATCHED_PHOTO).read_bytes()])
    log.info("demo real faces: resident %d enrolled, key person on the watchlist", person_id)

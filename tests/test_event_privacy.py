"""What of an event each caller sees: how a face was matched only with face permission, and
that a face is on a police watchlist only for the police."""

from __future__ import annotations

from typing import Any

from anju.core.scope import Actor
from anju.events.service import for_actor


def actor(*permissions: str, police: bool = False) -> Actor:
    return Actor(1, "u", "/1/", frozenset(permissions), police=police)


def event(face: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"door": "北门"}
    if face is not None:
        data["face"] = face
    return {"id": 7, "kind": "capture.face", "data": data}


MATCH = {"match": "stranger", "stranger": "S-20261121-0001", "distance": 0.31, "watch": [4]}


def test_police_with_face_permission_see_everything() -> None:
    item = event(MATCH)
    assert for_actor(actor("event.view", "face.view", police=True), item) is item


def test_property_with_face_permission_do_not_learn_of_watchlists() -> None:
    item = event(MATCH)
    shown = for_actor(actor("event.view", "face.view"), item)
    assert "watch" not in shown["data"]["face"]
    assert shown["data"]["face"]["stranger"] == "S-20261121-0001"
    assert item["data"]["face"]["watch"] == [4]  # the shared item (live feed) is untouched


def test_without_face_permission_the_match_is_left_out() -> None:
    shown = for_actor(actor("event.view", police=True), event(MATCH))
    assert shown["data"] == {"door": "北门"}


def test_events_without_a_face_pass_as_they_are() -> None:
    item = event(None)
    assert for_actor(actor("event.view"), item) is item

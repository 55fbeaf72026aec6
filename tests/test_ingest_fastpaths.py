"""Ingest's shortcuts against the general rules they stand in for.

Mainly the wire parser's plain path (``wire._plain``) against pydantic's
(``wire._validated``): the plain path takes only items whose every field has the ordinary
form and must make of them exactly what ``EventIn`` makes; anything else goes to pydantic,
which decides and says why. So for any input: either the plain path declines, or pydantic
accepts the item too and every field comes out equal, of the same type, in the same time
zone. And whole batches parse to the same outcomes (results, reasons) whether the plain
path is there or not. Then the smaller ones: card and plate readings that skip their
regular expressions, and SQLite's stored time text for times already in UTC.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from anju.core.validation import normalise_plate
from anju.events import normalise, wire
from anju.events.model import Direction, Event, Kind, Rejection, Subject, SubjectType
from anju.events.sql import sqlite_time

RECEIVED = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
MANY = settings(max_examples=600, deadline=None)

# Text that is near the edges pydantic cares about: whitespace (Python's and pydantic's
# differ), control characters, lone surrogates, non-ASCII letters, length limits.
edgy_char = st.sampled_from(
    [" ", "\t", "\n", "\x0b", "\x1c", "\x1f", "\x00", "\x7f", "\x85", "\xa0", "\u3000"]
) | st.sampled_from(
    ["\u2028", "\ud800", "\udfff", "é", "粤", "·", "-", "_", ".", ":", "a", "Z", "0", "9"]
)
edgy_text = st.lists(edgy_char, max_size=6).map("".join) | st.text(max_size=8)
padded = st.tuples(edgy_text, st.text(min_size=1, max_size=8), edgy_text).map("".join)
long_text = st.sampled_from([40, 41, 64, 65, 200, 201]).map(lambda n: "a" * n)
texts = edgy_text | padded | long_text

offsets = st.builds(
    lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
    st.sampled_from("+-"),
    st.integers(0, 25),
    st.integers(0, 61),
)
iso_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, sep, tz: (
        f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{tz}"
    ),
    st.sampled_from([1, 2, 1970, 2000, 2024, 2025, 2026, 9999]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".05", ".123", ".123456", ".1234567", ".", ".12a"]),
    st.sampled_from(["T", " ", "t"]),
    st.sampled_from(["Z", "z", "", "+08", "+0800"]) | offsets,
)
zones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]) | st.integers(
    -23 * 60 - 59, 23 * 60 + 59
).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def times(tz: st.SearchStrategy[Any], spec: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """ISO 8601 texts as Python writes them."""
    return st.builds(
        lambda when, zone, how: when.replace(tzinfo=zone).isoformat(timespec=how),
        st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)),
        tz,
        spec,
    )


real_times = times(
    zones | st.none(),
    st.sampled_from(["seconds", "milliseconds", "microseconds", "minutes", "auto"]),
)
# As devices send them: seconds (perhaps fractions) and an offset.
ordinary_times = times(zones, st.sampled_from(["seconds", "milliseconds", "auto"])) | times(
    zones, st.just("seconds")
).map(lambda t: t.replace("+00:00", "Z"))
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 0, -0.0, 1e308])
    | st.floats()
    | st.booleans()
)
scalars = st.none() | texts | numbers
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
subject_types = st.sampled_from([t.value for t in SubjectType]) | texts
subjects = (
    st.fixed_dictionaries(
        {
            "type": subject_types,
            "value": texts | st.sampled_from(["000A0001", "粤B12345", "aa-bb"]),
        },
        optional={"extra": scalars},
    )
    | json_like
)
field = {
    "id": st.none() | texts | st.sampled_from(["h1-2", "a.b:c_d", "x" * 64, "x" * 65]) | numbers,
    "device": texts | st.sampled_from(["GATE-1", "北门"]) | numbers | st.none(),
    "kind": st.sampled_from([k.value for k in Kind]) | texts | st.none(),
    "at": iso_times | real_times | texts | numbers,
    "subject": subjects,
    "direction": st.sampled_from(["in", "out", "IN", " in"]) | scalars,
    "value": numbers | st.none() | texts,
    "data": st.dictionaries(texts, json_like, max_size=3) | json_like,
    "image": st.none() | texts | st.sampled_from(["", "/9j/4AAQ", "data:image/jpeg;base64,/9j/"]),
}
items = st.fixed_dictionaries(
    {},
    optional={**field, "extra": scalars},
)


def plain_valid_item() -> st.SearchStrategy[dict[str, Any]]:
    """Items of the ordinary form (what devices send), which the plain path must take."""
    return st.fixed_dictionaries(
        {
            "device": st.sampled_from(["GATE-1", "AJHY-GATE-N-BAR-01", "北门"]),
            "kind": st.sampled_from([k.value for k in Kind]),
            "at": ordinary_times,
        },
        optional={
            "id": st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True),
            "subject": st.fixed_dictionaries(
                {
                    "type": st.sampled_from([t.value for t in SubjectType]),
                    "value": st.sampled_from(["000A0001", "粤B12345", "AA:BB:CC:DD:EE:FF"]),
                }
            ),
            "direction": st.sampled_from(["in", "out"]),
            "value": st.integers(-1000, 1000) | st.floats(allow_nan=False),
            "data": st.dictionaries(
                st.sampled_from(["door", "battery", "rsrp", "区"]), json_like, max_size=3
            ),
        },
    )


@st.composite
def near_misses(draw: st.DrawFn) -> dict[str, Any]:
    """An ordinary item with one or two fields changed, added or taken away: the inputs
    where the two paths could part."""
    item = draw(plain_valid_item())
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from([*field, "extra"]))
        if name in item and draw(st.booleans()):
            del item[name]
        else:
            item[name] = draw(field.get(name, scalars))
    return item


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, all the way down (NaN equal to itself); times equal in
    the same time zone object."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dt.datetime):
        return a == b and a.tzinfo is b.tzinfo and a.isoformat() == b.isoformat()
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@MANY
@given(item=items | near_misses())
def test_plain_path_agrees_with_pydantic_on_any_item(item: dict[str, Any]) -> None:
    plain = wire._plain(item)
    if plain is None:
        return  # pydantic decides; nothing to compare
    validated = wire._validated(item)
    assert not isinstance(validated, Rejection), (item, validated)
    assert same(plain, validated), (item, plain, validated)


@MANY
@given(item=plain_valid_item())
def test_plain_path_takes_ordinary_items_as_pydantic_does(item: dict[str, Any]) -> None:
    plain = wire._plain(item)
    assert plain is not None, item  # the plain path is not declining what devices send
    assert same(plain, wire._validated(item))


def without_plain_path(batch: list[Any]) -> list[Any]:
    with mock.patch.object(wire, "_plain", return_value=None):
        return wire.parse_batch(batch, RECEIVED)


def comparable(outcomes: list[Any]) -> list[Any]:
    """Outcomes with the ids generated for id-less events blanked (they are random)."""
    out = []
    for o in outcomes:
        if isinstance(o, Event):
            out.append((o.device, o.kind, o.at, o.subject, o.direction, o.value, o.data, o.image))
        else:
            out.append(o)
    return out


@MANY
@given(batch=st.lists(items | near_misses() | plain_valid_item() | json_like, max_size=6))
def test_batches_parse_alike_with_or_without_the_plain_path(batch: list[Any]) -> None:
    fast = wire.parse_batch(batch, RECEIVED)
    slow = without_plain_path(batch)
    assert len(fast) == len(slow)
    for a, b in zip(comparable(fast), comparable(slow), strict=True):
        assert same(a, b) if not isinstance(a, Rejection) else a == b, (batch, a, b)


def test_an_ordinary_item_becomes_its_event() -> None:
    item = {
        "id": "h1-2",
        "device": "AJHY-GATE-N-FACE-01",
        "kind": "access.card",
        "at": "2026-11-21T15:59:58.25+08:00",
        "direction": "in",
        "subject": {"type": "card", "value": "000a-0001"},
        "value": 3,
        "data": {"door": 1, "reader": 2},
    }
    assert wire._plain(item) is not None
    (event,) = wire.parse_batch([item], RECEIVED)
    assert event == Event(
        device="AJHY-GATE-N-FACE-01",
        kind=Kind.ACCESS_CARD,
        at=dt.datetime(2026, 11, 21, 7, 59, 58, 250000, tzinfo=dt.UTC),
        id="h1-2",
        subject=Subject(SubjectType.CARD, "000A0001"),
        direction=Direction.IN,
        value=3.0,
        data={"door": 1, "reader": 2},
    )
    assert type(event.value) is float and event.data is not item["data"]


def test_near_misses_go_to_pydantic_and_keep_its_reasons() -> None:
    base = {"device": "GATE-1", "kind": "access.card", "at": "2026-11-21T08:00:00+08:00"}
    cases = {
        # pydantic strips these before judging, the plain path does not try
        "device": " GATE-1 ",
        "id": " h1 ",
        "at": "2026-11-21T08:00:00",  # no offset: refused with pydantic's words
        "value": True,
        "kind": "access.CARD",
        "direction": "IN",
    }
    for name, value in cases.items():
        item = {**base, name: value}
        assert wire._plain(item) is None, name
        assert comparable(wire.parse_batch([item], RECEIVED)) == comparable(
            without_plain_path([item])
        )
    (no_offset,) = wire.parse_batch([{**base, "at": "2026-11-21T08:00:00"}], RECEIVED)
    assert no_offset == Rejection(
        "at: needs a UTC offset, e.g. 2026-11-21T08:00:00+08:00", device="GATE-1"
    )
    (extra,) = wire.parse_batch([{**base, "colour": "red"}], RECEIVED)
    assert isinstance(extra, Rejection) and extra.reason == "colour: unknown field"


def test_a_repeated_subject_is_normalised_once_and_shared() -> None:
    base = {"device": "BAR-1", "kind": "vehicle.passed", "at": "2026-11-21T08:00:00+08:00"}
    batch = [{**base, "subject": {"type": "plate", "value": "粤b·12345"}} for _ in range(3)]
    batch.append({**base, "subject": {"type": "plate", "value": "--"}})
    first, second, third, bad = wire.parse_batch(batch, RECEIVED)
    assert isinstance(first, Event) and isinstance(second, Event) and isinstance(third, Event)
    assert first.subject == Subject(SubjectType.PLATE, "粤B12345")
    assert first.subject is second.subject is third.subject
    assert bad == Rejection("empty plate", device="BAR-1")


def test_a_time_beyond_the_calendar_in_utc_is_refused_not_raised() -> None:
    base = {"device": "GATE-1", "kind": "access.card", "id": "e1"}
    good = {**base, "id": "e2", "at": "2026-11-21T08:00:00+08:00"}
    early = {**base, "at": "0001-01-01T00:00:00+08:00"}
    late = {**base, "at": "9999-12-31T23:59:59-08:00"}
    first, second, third = wire.parse_batch([early, late, good], RECEIVED)
    refused = Rejection(
        "at: time is out of range (check the device clock)", device="GATE-1", id="e1"
    )
    assert first == refused and second == refused
    assert isinstance(third, Event)  # the good event beside them is not lost


@MANY
@given(value=texts | st.sampled_from(["粤b12345", "京A·12345", "000a0001", "ａｂ１２", "ß", "ﬁ"]))
def test_plain_readings_normalise_as_the_general_rule_does(value: str) -> None:
    """``normalise`` skips its regular expressions for letters-and-digits readings; the
    answer (or the refusal) is the general rule's."""

    def outcome(f: Any) -> Any:
        try:
            return f()
        except ValueError as exc:
            return str(exc)

    general_card = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    assert outcome(lambda: normalise.card(value)) == (general_card or "empty card number")
    general_plate = normalise_plate(value)
    assert outcome(lambda: normalise.plate(value)) == (general_plate or "empty plate")


@MANY
@given(
    when=st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    zone=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]),
)
def test_sqlite_time_text_is_the_same_whatever_the_zone(when: dt.datetime, zone: Any) -> None:
    """The stored text of a UTC time (a shortcut) is what the general conversion gives."""
    aware = when.replace(tzinfo=zone)
    general = aware.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    assert sqlite_time(aware) == general
    assert sqlite_time(aware.astimezone(dt.UTC)) == general
    assert len(general) == 26

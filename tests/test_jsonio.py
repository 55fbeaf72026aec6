"""``anju.core.jsonio.loads``: what the standard library decodes, every digit kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.core import jsonio

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@given(values)
def test_decodes_as_the_standard_library_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert jsonio.loads(text) == json.loads(text)
    assert jsonio.loads(text.encode()) == json.loads(text)


def test_long_integers_keep_every_digit() -> None:
    for number in (2**64, 2**70 + 1, -(2**65) - 3, 10**30 + 7):
        decoded = jsonio.loads(f'{{"n": {number}, "s": "x"}}')["n"]
        assert decoded == number and isinstance(decoded, int)


@pytest.mark.parametrize(
    "text", ["", "{", '{"a": 1,}', "nope", b"\xff", '{"n": 12345678901234567890']
)
def test_what_is_not_json_is_refused(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        jsonio.loads(text)

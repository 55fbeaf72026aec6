"""The periodic thread beside the web server (tick, relays)."""

from __future__ import annotations

import threading

from anju.core.periodic import Periodic


def test_a_failing_call_is_logged_and_the_next_one_tried() -> None:
    calls: list[int] = []
    again = threading.Event()

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        again.set()

    thread = Periodic("test-periodic", 0.01, work, at_once=True)
    thread.start()
    try:
        assert again.wait(5)
    finally:
        thread.stop()
    assert len(calls) >= 2


def test_without_at_once_the_first_call_waits_a_period() -> None:
    calls: list[int] = []
    thread = Periodic("test-periodic", 60.0, lambda: calls.append(1))
    thread.start()
    thread.stop()
    assert calls == []

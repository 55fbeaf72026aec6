"""A call repeated on a daemon thread beside the web server (the device-health tick, the
relays of other processes' alerts and events)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``work`` every ``every`` seconds (first at once with ``at_once``) until
    stopped. A failing call is logged and the next one tried: the server must not lose
    the thread to a database hiccup."""

    def __init__(
        self, name: str, every: float, work: Callable[[], Any], *, at_once: bool = False
    ) -> None:
        self.name = name
        self.every = every
        self.work = work
        self.at_once = at_once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        if not self.at_once and self._stop.wait(self.every):
            return
        while True:
            try:
                self.work()
            except Exception:
                log.exception("%s failed; trying again in %g s", self.name, self.every)
            if self._stop.wait(self.every):
                return

"""The context every service function receives: session, cipher, actor and clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from anju.core.crypto import FieldCipher
from anju.core.db import utcnow
from anju.core.scope import Actor


@dataclass
class Ctx:
    """What a unit of work needs; built by the composition root, never global."""

    session: Session
    cipher: FieldCipher
    actor: Actor
    clock: Callable[[], dt.datetime] = field(default=utcnow)
    timezone: str = "Asia/Shanghai"  # the deployment's, set by the node from its settings

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        """Today's date where the community is (not in UTC: leases end on local dates)."""
        return self.clock().astimezone(ZoneInfo(self.timezone)).date()

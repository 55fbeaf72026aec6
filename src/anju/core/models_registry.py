"""Imports every area's tables so ``Base.metadata`` is complete (Alembic, tests)."""

from anju.alerts import config as alert_config
from anju.alerts import models as alert_models
from anju.alerts import watchlist as alert_watchlist
from anju.audit import models as audit_models
from anju.auth import models as auth_models
from anju.devices import models as device_models
from anju.events import models as event_models
from anju.faces import models as face_models
from anju.org import models as org_models
from anju.registry import models as registry_models

__all__ = [
    "alert_config",
    "alert_models",
    "alert_watchlist",
    "audit_models",
    "auth_models",
    "device_models",
    "event_models",
    "face_models",
    "org_models",
    "registry_models",
]

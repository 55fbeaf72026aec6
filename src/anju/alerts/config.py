"""Alert model configuration per organisation unit, inherited down the tree.

The effective configuration of a model in a community is the model's defaults, overridden
by each ancestor's row from the city down to the community itself (a district turns a model
off, a community lowers a threshold). Saving validates the result with the model's pydantic
parameters, so an impossible value is refused with the field named. Rows are never
updated: each save adds the next version, so old versions stay; the table is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from anju.alerts.rules import MODELS
from anju.alerts.rules.base import ModelParams
from anju.core.db import Base, BigId, IdMixin, utcnow
from anju.core.errors import NotFound, ValidationFailed, field_errors
from anju.org.models import OrgUnit


class AlertConfig(IdMixin, Base):
    """One version of one model's overrides at one organisation unit."""

    __tablename__ = "alert_configs"
    __table_args__ = (UniqueConstraint("org_unit_id", "model", "version"),)

    org_unit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("org_units.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(60), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def params_class(code: str) -> type[ModelParams]:
    model = MODELS.get(code)
    if model is None:
        raise NotFound(f"alert model {code}")
    return model.Params


def _ancestors(session: Session, unit_id: int) -> list[int]:
    """The unit's ancestors from the root down, the unit itself last."""
    path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == unit_id))
    if path is None:
        raise NotFound(f"organisation unit {unit_id}")
    return [int(p) for p in path.strip("/").split("/") if p]


def _latest(session: Session, units: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    """The newest overrides of each (unit, model) among ``units``."""
    newest = (
        select(AlertConfig.org_unit_id, AlertConfig.model, func.max(AlertConfig.version).label("v"))
        .where(AlertConfig.org_unit_id.in_(units))
        .group_by(AlertConfig.org_unit_id, AlertConfig.model)
        .subquery()
    )
    rows = session.execute(
        select(AlertConfig.org_unit_id, AlertConfig.model, AlertConfig.params).join(
            newest,
            (newest.c.org_unit_id == AlertConfig.org_unit_id)
            & (newest.c.model == AlertConfig.model)
            & (newest.c.v == AlertConfig.version),
        )
    )
    return {(r.org_unit_id, r.model): dict(r.params or {}) for r in rows}


def merged(session: Session, unit_id: int) -> dict[str, dict[str, Any]]:
    """Per model code, the overrides that apply at ``unit_id`` (ancestors first)."""
    units = _ancestors(session, unit_id)
    latest = _latest(session, units)
    out: dict[str, dict[str, Any]] = {code: {} for code in MODELS}
    for unit in units:
        for code in MODELS:
            out[code].update(latest.get((unit, code), {}))
    return out


def effective(session: Session, community_id: int) -> dict[str, ModelParams]:
    """Every model's effective parameters in a community (or at any organisation unit).
    An override stored before a
    model changed shape and now invalid is skipped field by field rather than breaking the
    model: the defaults stand for what cannot be read."""
    out: dict[str, ModelParams] = {}
    for code, overrides in merged(session, community_id).items():
        out[code] = _lenient(params_class(code), overrides)
    return out


def _lenient(cls: type[ModelParams], overrides: Mapping[str, Any]) -> ModelParams:
    try:
        return cls.model_validate(overrides)
    except ValidationError:
        good: dict[str, Any] = {}
        for key, value in overrides.items():
            try:
                cls.model_validate({**good, key: value})
            except ValidationError:
                continue
            good[key] = value
        return cls.model_validate(good)


def save(
    session: Session, unit_id: int, code: str, params: Mapping[str, Any], by: str | None
) -> AlertConfig:
    """Store the next version of ``code``'s overrides at ``unit_id`` after checking that
    they, and the configuration they make at this unit, are valid."""
    cls = params_class(code)
    units = _ancestors(session, unit_id)
    inherited: dict[str, Any] = {}
    latest = _latest(session, units[:-1])
    for unit in units[:-1]:
        inherited.update(latest.get((unit, code), {}))
    unknown = sorted(set(params) - set(cls.model_fields))
    if unknown:
        raise ValidationFailed.one(unknown[0], "is not a parameter of this model")
    try:
        checked = cls.model_validate({**inherited, **params})
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
    # Keep only what was given, in its validated (JSON-able) form.
    dumped = checked.model_dump(mode="json")
    values = {key: dumped[key] for key in params}
    version = (
        session.scalar(
            select(func.max(AlertConfig.version)).where(
                AlertConfig.org_unit_id == unit_id, AlertConfig.model == code
            )
        )
        or 0
    )
    row = AlertConfig(
        org_unit_id=unit_id, model=code, params=values, version=version + 1, updated_by=by
    )
    session.add(row)
    session.flush()
    return row


def versions(session: Session, unit_id: int, code: str) -> list[AlertConfig]:
    """Every stored version of ``code`` at ``unit_id``, newest first."""
    return list(
        session.scalars(
            select(AlertConfig)
            .where(AlertConfig.org_unit_id == unit_id, AlertConfig.model == code)
            .order_by(AlertConfig.version.desc())
        )
    )

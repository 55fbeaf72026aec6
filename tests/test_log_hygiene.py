"""Sensitive values never reach the logs, even on the paths most likely to leak them.

The simulator's real ID numbers and phones are pushed through search, lookup, reveal,
import (with rejected rows), export and failed sign-ins, with every logger captured; the
session-wide check in conftest then looks for them (and every ID the tests made) in all
log lines of the run.
"""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from anju.registry.models import Person
from anju.sim.community import CommunityConfig, build_community
from anju.web.app import create_app
from tests.conftest import ADMIN_PASSWORD, LOG_LINES, SENSITIVE_VALUES
from tests.web_helpers import sign_in


def test_simulated_identities_stay_out_of_logs(app_node):
    code = f"LOG{app_node.backend[:2].upper()}"
    with app_node.unit_of_work() as ctx:
        build_community(
            ctx,
            CommunityConfig(
                seed=7,
                residents=60,
                code=code,
                name="日志小区",
                district_code=f"{code}D",
                station_code=f"{code}S",
                office_code=f"{code}O",
                today=dt.date(2026, 11, 1),
            ),
        )
        people = ctx.session.scalars(select(Person).where(Person.phone_enc.is_not(None))).all()
        clear = [
            (
                p.id,
                ctx.cipher.decrypt(p.id_number_enc, "id_number"),
                ctx.cipher.decrypt(p.phone_enc, "phone"),
            )
            for p in people[:15]
        ]
    for _pid, number, phone in clear:
        SENSITIVE_VALUES.update({number, phone})
    start = len(LOG_LINES)

    with TestClient(create_app(app_node)) as client:
        # Failed sign-ins with identity numbers typed as user names.
        for _pid, number, phone in clear[:3]:
            token = client.get("/login").cookies.get("anju_login_csrf")
            client.post("/login", data={"username": number, "password": phone, "csrf_token": token})
        csrf = sign_in(client, "admin", ADMIN_PASSWORD)
        for pid, number, _phone in clear:
            client.get("/people", params={"q": number})
            client.get("/lookup/person", params={"q": number})
            client.post(
                "/api/v1/people/lookup", json={"id_number": number}, headers={"X-CSRF-Token": csrf}
            )
            client.post(
                f"/people/{pid}/reveal",
                data={"csrf_token": csrf, "fields": ["id_number", "phone"], "reason": "日志检查"},
            )
        bad_rows = "小区编码,姓名,证件号码,联系电话\n" + "".join(
            f"{code},某人,{number[:-1]}{'0' if number[-1] != '0' else '1'},{phone}\n"
            for _p, number, phone in clear
        )
        client.post(
            "/transfer/import",
            data={"csrf_token": csrf, "kind": "people"},
            files={"file": ("bad.csv", bad_rows.encode("utf-8-sig"), "text/csv")},
        )
        client.get("/transfer/export", params={"kind": "people", "community": code})

    text = "\n".join(LOG_LINES[start:])
    assert "failed sign-in" in text  # the logs were captured at all
    for _pid, number, phone in clear:
        assert number not in text and phone not in text
        assert number[:-1] not in text  # nor the mistyped variants of the import

"""Helpers for console and API tests: sign in through the real login form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]*)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF meta tag"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str) -> str:
    """Sign in through /login; returns the session's CSRF token."""
    page = client.get("/login")
    token = csrf_of(page.text)
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:500]
    return csrf_of(client.get("/").text)

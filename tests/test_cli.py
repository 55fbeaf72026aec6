"""The ``anju`` command: init, check-config, settings refusal."""

from __future__ import annotations

import base64
import json

from typer.testing import CliRunner

from anju.cli import app

runner = CliRunner()


def _env(tmp_path, **extra):
    env = {"ANJU_DATA_DIR": str(tmp_path / "data"), **extra}
    return env


def test_init_creates_database_and_prints_password_once(tmp_path, monkeypatch):
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANJU_ADMIN_PASSWORD", raising=False)
    first = runner.invoke(app, ["init", "--json"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["admin_created"] and len(out["admin_password"]) >= 12
    assert (tmp_path / "data" / "anju.db").exists()
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0
    again = json.loads(runner.invoke(app, ["init", "--json"]).stdout)
    assert again["admin_created"] is False and again["admin_password"] is None

    check = runner.invoke(app, ["check-config", "--json"])
    assert check.exit_code == 0, check.output
    report = json.loads(check.stdout)
    assert report["ok"] and report["schema"] == report["newest"]
    assert report["settings"]["secret_key"] is None


def test_unknown_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANJU_DATABSE_URL", "sqlite://")  # misspelt on purpose
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "ANJU_DATABSE_URL" in result.output


def test_bad_database_url_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANJU_DATABASE_URL", "mysql://x@y/z")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "postgresql" in result.output


def test_check_config_reports_missing_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "empty"))
    result = runner.invoke(app, ["check-config", "--json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert any("secret key" in p for p in problems)


def test_secret_key_from_environment(tmp_path, monkeypatch):
    key = base64.b64encode(b"k" * 32).decode()
    monkeypatch.setenv("ANJU_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("ANJU_SECRET_KEY", key)
    monkeypatch.setenv("ANJU_ADMIN_PASSWORD", "a-strong-password")
    result = runner.invoke(app, ["init", "--json"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "d" / "secret.key").exists()


def test_settle_process_freezes_what_start_up_built() -> None:
    """``anju serve`` and the workers move what start-up built out of the collector's way,
    and hand the interpreter between threads more often than CPython's default."""
    import gc
    import sys

    from anju.bootstrap import SWITCH_INTERVAL, settle_process

    before = gc.get_freeze_count()
    interval = sys.getswitchinterval()
    built = [{"n": n} for n in range(1000)]  # long-lived, like the app's own objects
    try:
        settle_process()
        assert gc.get_freeze_count() >= before + len(built)
        assert sys.getswitchinterval() == SWITCH_INTERVAL < 0.005
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)

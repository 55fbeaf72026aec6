"""Collect every message id the console can show, and keep the ``.po`` catalogues whole.

Sources: ``_()`` calls in templates; the constant messages of validation errors in the
code (found by walking its syntax tree); enum display names; resource labels. Run
``python -m anju.web.i18n_catalog`` after adding text: it adds new ids to each catalogue
(untranslated) and a test fails until they are translated.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from jinja2 import Environment

from anju.auth.defaults import PERMISSIONS
from anju.core.errors import PLAIN_MESSAGES
from anju.web.i18n import LOCALE_DIR
from anju.web.labels import LABELS
from anju.web.resources import RESOURCES

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Calls whose string arguments are messages people read.
_MESSAGE_CALLS = {"ValueError": 0, "FieldValueError": 1, "FieldError": 1, "one": 1}


def template_messages() -> set[str]:
    env: Any = Environment(extensions=["jinja2.ext.i18n"])
    found: set[str] = set()
    for path in sorted(TEMPLATE_DIR.rglob("*.html")):
        for _line, _func, message in env.extract_translations(path.read_text(encoding="utf-8")):
            if isinstance(message, str):
                found.add(message)
    return found


def code_messages() -> set[str]:
    """Constant messages passed to ValueError/FieldValueError/FieldError/ValidationFailed.one."""
    found: set[str] = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "migrations" in path.parts or "sim" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for stmt in tree.body:
            # Module-level message constants: _NO_HOUSE = "no such house …"
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id.lstrip("_").isupper()
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
                and " " in stmt.value.value
                and stmt.value.value[:1].islower()
            ):
                found.add(stmt.value.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "unique_messages":
                found.update(_tuple_messages(node.value))
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.id if isinstance(node.func, ast.Name) else ""
            for kw in node.keywords if callee == "render" else []:
                # render(request, ..., error="…", title="…", message="…")
                value = kw.value
                is_text = isinstance(value, ast.Constant) and isinstance(value.value, str)
                if kw.arg in ("error", "title", "message") and is_text:
                    found.add(str(value.value))  # type: ignore[attr-defined]
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            index = _MESSAGE_CALLS.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def _tuple_messages(node: ast.expr) -> set[str]:
    """Messages in ``{"column": ("field", "message")}`` literals."""
    found: set[str] = set()
    if isinstance(node, ast.Dict):
        for value in node.values:
            if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                message = value.elts[1]
                if isinstance(message, ast.Constant) and isinstance(message.value, str):
                    found.add(message.value)
    return found


def spec_messages() -> set[str]:
    from anju.events.views import EXPORT_MESSAGES

    found = set(PLAIN_MESSAGES.values()) | set(PERMISSIONS.values()) | set(EXPORT_MESSAGES)
    for names in LABELS.values():
        found.update(names.values())
    for r in RESOURCES:
        found.update({r.title, r.singular})
        found.update(c.label for c in (*r.columns, *r.detail))
        for inp in (*r.form, *r.filters):
            found.add(inp.label)
            if inp.help:
                found.add(inp.help)
    return found


def all_messages() -> set[str]:
    return template_messages() | code_messages() | spec_messages()


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


def load(language: str) -> Catalog:
    path = catalog_path(language)
    if not path.exists():
        return Catalog(locale=language, project="anju")
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


def update(language: str = "zh_CN") -> list[str]:
    """Add missing ids to a catalogue, drop ids no longer used; returns the untranslated."""
    old = load(language)
    new = Catalog(locale=language, project="anju", charset="utf-8")
    for msgid in sorted(all_messages()):
        prior = old.get(msgid)
        new.add(msgid, prior.string if prior is not None else "")
    path = catalog_path(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, new, width=120, omit_header=False, sort_output=True)
    return [str(m.id) for m in new if m.id and not m.string]


if __name__ == "__main__":
    missing = update()
    print(f"{len(missing)} untranslated message(s)")
    for m in missing:
        print("  ", m)

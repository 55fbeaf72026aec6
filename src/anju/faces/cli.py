"""``anju faces``: enroll registration photos, identify a face, verify two photos (1:1).

For installers and scripts; every command acts as the node itself (the system actor).
Exit codes: 0 done (``verify``: the same person), 1 ``verify``: different people, 2 bad
input (an unreadable image, no face, an unknown person).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

app = typer.Typer(help="Enroll, identify and verify faces.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")]


def _node() -> Any:
    from anju.cli import _node as build
    from anju.cli import configure_logging, settings_or_exit

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    return build(settings)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")


def _fail(message: str, json_output: bool = False) -> NoReturn:
    if json_output:
        print(json.dumps({"error": message}, ensure_ascii=False))
    else:
        err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


def _problem(exc: Exception) -> str:
    from anju.core.errors import ValidationFailed

    if isinstance(exc, ValidationFailed):
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return str(exc) or exc.__class__.__name__


@app.command("enroll")
def enroll(
    person_id: Annotated[int, typer.Argument(help="The registered person's id.")],
    images: Annotated[list[Path], typer.Argument(help="Photos of the person, one face each.")],
    json_output: JsonFlag = False,
) -> None:
    """Enroll registration photos of a person (all or nothing)."""
    from anju.core.errors import NotFound, ValidationFailed

    data = [_read(p) for p in images]
    node = _node()
    try:
        with node.unit_of_work() as ctx:
            count = node.faces.enroll(ctx, person_id, data)
            total = node.faces.face_count(ctx, person_id)
    except NotFound:
        _fail(f"no person with id {person_id}", json_output)
    except ValidationFailed as exc:
        _fail(_problem(exc), json_output)
    finally:
        node.dispose()
    if json_output:
        print(json.dumps({"person_id": person_id, "enrolled": count, "templates": total}))
        return
    console.print(f"enrolled {count} photo(s) of person {person_id}; {total} face(s) on record")


@app.command("identify")
def identify(
    image: Annotated[Path, typer.Argument(help="A photo with the face to look for.")],
    limit: Annotated[int, typer.Option(help="How many candidates at most.", min=1)] = 5,
    json_output: JsonFlag = False,
) -> None:
    """Print the best candidates within the match threshold (resident person ids, watchlist
    entries, strangers) with their distances, or 'unknown'."""
    from anju.core.errors import ValidationFailed

    data = _read(image)
    node = _node()
    try:
        with node.unit_of_work() as ctx:
            found = node.faces.identify(ctx, data, limit=limit)
    except ValidationFailed as exc:
        _fail(_problem(exc), json_output)
    finally:
        node.dispose()
    if json_output:
        out = {
            "match": bool(found),
            "threshold": node.faces.threshold,
            "candidates": [
                {
                    "kind": c.kind,
                    "id": c.id,
                    "label": c.label,
                    "distance": c.distance,
                    "community_id": c.community_id,
                }
                for c in found
            ],
        }
        print(json.dumps(out, ensure_ascii=False))
        return
    if not found:
        print("unknown")
        return
    for c in found:
        who = {"resident": "person", "watch": "watchlist entry", "stranger": "stranger"}[c.kind]
        print(f"{who} {c.id}\t{c.label}\tdistance {c.distance:.4f}")


@app.command("verify")
def verify(
    image_a: Annotated[Path, typer.Argument(help="One photo (e.g. the registration photo).")],
    image_b: Annotated[Path, typer.Argument(help="The other (e.g. the ID card photo).")],
    json_output: JsonFlag = False,
) -> None:
    """人证合一: whether two photos show the same person (exit 0) or not (exit 1)."""
    from anju.core.errors import ValidationFailed

    a, b = _read(image_a), _read(image_b)
    node = _node()
    try:
        result = node.faces.verify(a, b)
    except ValidationFailed as exc:
        _fail(_problem(exc), json_output)
    finally:
        node.dispose()
    if json_output:
        print(
            json.dumps(
                {"same": result.same, "distance": result.distance, "threshold": result.threshold}
            )
        )
    else:
        verdict = "same" if result.same else "different"
        print(f"{verdict}\tdistance {result.distance:.4f} (threshold {result.threshold})")
    if not result.same:
        raise typer.Exit(1)

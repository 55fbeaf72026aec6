"""Console pages for registry import (upload, per-row report) and export (download)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from anju.core.errors import PermissionDenied
from anju.registry import transfer
from anju.web import forms
from anju.web.deps import ConsoleCtx, CsrfDep
from anju.web.templating import render

router = APIRouter(include_in_schema=False)

MAX_UPLOAD = 20 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KIND_LABELS = {
    "people": "People",
    "houses": "Houses",
    "residencies": "Residencies",
    "vehicles": "Vehicles",
    "organisations": "Organisations",
}


def _download(content: bytes, filename: str, media: str) -> Response:
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@router.get("/transfer", response_class=HTMLResponse)
def transfer_page(request: Request, ctx: ConsoleCtx) -> Response:
    if not (ctx.actor.can("registry.import") or ctx.actor.can("registry.export")):
        raise PermissionDenied("registry.import")
    return render(
        request,
        "registry/transfer.html",
        report=None,
        kinds=KIND_LABELS,
        communities=forms.community_codes(ctx),
    )


@router.post("/transfer/import", dependencies=[CsrfDep], response_class=HTMLResponse)
async def import_upload(request: Request, ctx: ConsoleCtx) -> Response:
    """Import an uploaded spreadsheet; good rows are kept, bad rows listed with the reason."""
    if not ctx.actor.can("registry.import"):
        raise PermissionDenied("registry.import")
    form = await request.form()
    upload = form.get("file")
    kind = str(form.get("kind") or "") or None
    community = str(form.get("community_code") or "") or None
    communities = forms.community_codes(ctx)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request,
            "registry/transfer.html",
            status_code=422,
            report=None,
            kinds=KIND_LABELS,
            communities=communities,
            error="Choose a file to import",
        )
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return render(
            request,
            "registry/transfer.html",
            status_code=413,
            report=None,
            kinds=KIND_LABELS,
            communities=communities,
            error="The file is larger than 20 MB",
        )
    try:
        report = transfer.import_file(
            ctx, data, filename=upload.filename, kind=kind, community_code=community
        )
    except transfer.TransferError as exc:
        ctx.session.rollback()
        return render(
            request,
            "registry/transfer.html",
            status_code=422,
            report=None,
            kinds=KIND_LABELS,
            communities=communities,
            error=str(exc),
        )
    return render(
        request, "registry/transfer.html", report=report, kinds=KIND_LABELS, communities=communities
    )


@router.get("/transfer/export")
def export_download(
    request: Request,
    ctx: ConsoleCtx,
    kind: str = "all",
    fmt: str = "xlsx",
    community: str | None = None,
) -> Response:
    """Download the registry (ID numbers and phones masked) in the caller's scope."""
    if not ctx.actor.can("registry.export"):
        raise PermissionDenied("registry.export")
    fmt = "csv" if fmt == "csv" and kind != "all" else "xlsx"
    content = transfer.export_file(ctx, kind, fmt, community_code=community or None)
    stamp = dt.date.today().strftime("%Y%m%d")
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    return _download(content, f"anju-{kind}-{stamp}.{fmt}", media)


@router.post("/transfer/export", dependencies=[CsrfDep])
async def export_sensitive(request: Request, ctx: ConsoleCtx) -> Response:
    """Download with full ID numbers and phones: its own permission, audited with a file hash."""
    if not ctx.actor.can("export.sensitive"):
        raise PermissionDenied("export.sensitive")
    form = await request.form()
    kind = str(form.get("kind") or "all")
    content = transfer.export_file(ctx, kind, "xlsx", sensitive=True)
    stamp = dt.date.today().strftime("%Y%m%d")
    return _download(content, f"anju-{kind}-{stamp}-full.xlsx", XLSX)


@router.get("/transfer/template")
def template_download(request: Request, ctx: ConsoleCtx, community: str | None = None) -> Response:
    """A spreadsheet template with headers and example rows for every kind."""
    if not ctx.actor.can("registry.import"):
        raise PermissionDenied("registry.import")
    # The sample rows use a community of the caller's, so the template imports as it is.
    codes = [code for code, _name in forms.community_codes(ctx)]
    chosen = community if community in codes else (codes[0] if codes else "C001")
    return _download(transfer.sample_workbook(chosen), "anju-import-template.xlsx", XLSX)

"""Every document of record one click away (issue 18's papers), through one door: `GET /documents/{service}/{path}`.

The portal passes the document on exactly as the service made (and archived) it, fetched with the signed-in
person's own token: the service decides who may have it (the same access as its JSON). Only the services'
document endpoints are reachable here (DOCUMENT_PATHS), nothing else of their APIs.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.web import PageError, portal_of

router = APIRouter()
ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DOCUMENT_PATHS: dict[str, tuple[re.Pattern[str], ...]] = {
    "casework": (re.compile(rf"activities/{ID}/feedback-form\.pdf"), re.compile(rf"transmittals/{ID}\.pdf")),
    "registry": (re.compile(rf"supervisors/{ID}/appointments/{ID}/certificate\.pdf"),
                 re.compile(rf"dismissals/{ID}/notices/[a-z_]{{1,40}}\.pdf"),
                 re.compile(rf"dismissals/{ID}/announcement\.pdf")),
    "appraisal": (re.compile(r"ledger/\d{4}\.pdf"), re.compile(rf"ledger/{ID}/\d{{4}}\.pdf"),
                  re.compile(rf"rounds/{ID}/notices/\d{{1,12}}\.pdf"),
                  re.compile(rf"rounds/{ID}/participants/{ID}/defence-notice\.pdf"),
                  re.compile(rf"rounds/{ID}/public-notice\.pdf")),
    "finance": (re.compile(r"disbursements/\d{4}-(0[1-9]|1[0-2])/(pdf|xlsx)"),
                re.compile(rf"travel-claims/{ID}/items/{ID}/receipt")),  # R43.1: a claim's receipt as uploaded
}
MEDIA_TYPES = {"pdf": "application/pdf", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
# a receipt is the file as it was uploaded: one of finance's receipt types, shown in the browser
RECEIPT_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def document_path(service: str, path: str) -> bool:
    return any(p.fullmatch(path) for p in DOCUMENT_PATHS.get(service, ()))


@router.get("/documents/{service}/{path:path}", summary="下载文书（由服务按其权限提供）")
async def document(request: Request, service: str, path: str) -> Response:
    portal = portal_of(request)
    session = portal.signed_in(request)
    if not document_path(service, path):
        raise PageError(404, "not_found", "文书不存在", "只能通过页面上的链接下载文书。")
    answer = await request.app.state.backend.download(service, f"/{path}", session.token)
    if path.endswith("/receipt"):
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in RECEIPT_TYPES:
            raise PageError(502, "upstream_error", "票据格式无法显示",
                            "补助经费服务返回的票据不是 PDF、JPEG 或 PNG 文件。")
        return Response(answer.content, media_type=media_type, headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="receipt-{path.split("/")[3]}.{RECEIPT_TYPES[media_type]}"'})
    kind = "xlsx" if path.endswith("xlsx") else "pdf"
    name = path.rsplit("/", 1)[-1] if "." in path.rsplit("/", 1)[-1] else path.replace("/", "-") + f".{kind}"
    # the archive's own marks of the paper (issue 18: its sha256, 文号, when issued) go through as the service sent them
    marks = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-document-")}
    return Response(answer.content, media_type=MEDIA_TYPES[kind], headers={
        **marks, "Cache-Control": "no-store",
        "Content-Disposition": f'{"inline" if kind == "pdf" else "attachment"}; filename="{name}"'})

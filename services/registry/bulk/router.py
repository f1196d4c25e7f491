"""HTTP of bulk roster work: the import template, the all-or-nothing import of appointees, the roster export.

Mounted before the roster router: `/supervisors/import-template` and `/supervisors/export` must not be taken
for `/supervisors/{supervisor_id}`.
"""

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from services.registry import rules
from services.registry.bulk import service as svc
from services.registry.bulk import workbook
from services.registry.roster import service as roster
from services.registry.roster.router import RosterQuery, roster_filters
from services.registry.web import ADMIN, SettingsDep, StaffReader
from shared.app import CipherDep, OutboxDep, SessionDep
from shared.auth import Principal, Role, forbidden
from shared.db.read import ReadConnDep
from shared.errors import Unprocessable

router = APIRouter(tags=["registry"])

# the file is the whole body; its content type is not checked (the bytes are: see workbook.read_import)
BINARY = {"schema": {"type": "string", "format": "binary"}}
XLSX_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": BINARY,
                                                           workbook.XLSX_MEDIA_TYPE: BINARY}}}


def xlsx(data: bytes, filename: str) -> Response:
    return Response(data, media_type=workbook.XLSX_MEDIA_TYPE, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}", "Cache-Control": "no-store"})


async def read_upload(request: Request) -> bytes:
    """The request body, refused (422, nothing read further) once it exceeds the import's size limit."""
    too_large = workbook.BadFile("file_too_large", f"文件超过{workbook.MAX_BYTES // (1024 * 1024)} MB，请分批导入。")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > workbook.MAX_BYTES:
        raise bad_file(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > workbook.MAX_BYTES:
            raise bad_file(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def bad_file(exc: workbook.BadFile) -> Unprocessable:
    return Unprocessable(exc.code, "导入文件无法使用，未导入任何记录", exc.detail)


@router.get("/supervisors/import-template", summary="下载人民监督员批量任命导入模板（xlsx）",
            response_class=Response, responses={200: {"content": {workbook.XLSX_MEDIA_TYPE: {}}}})
async def import_template(session: SessionDep, settings: SettingsDep, principal: Principal = ADMIN) -> Response:
    names = [r["name"] for r in await roster.specialties(session, include_inactive=False)]
    data = workbook.template(districts=settings.districts, specialties=names)
    return xlsx(data, "人民监督员批量任命导入模板.xlsx")


@router.post("/supervisors/imports", status_code=201, openapi_extra=XLSX_BODY,
             summary="批量导入任命人员（xlsx；逐行校验，全部正确才导入，否则一行不导入并列出每一错误行）")
async def import_appointees(request: Request, session: SessionDep, outbox: OutboxDep, cipher: CipherDep,
                            settings: SettingsDep, principal: Principal = ADMIN) -> dict:
    """Body: the filled-in template (Content-Type application/vnd.openxmlformats-officedocument.spreadsheetml.sheet).

    Every row goes through the single appointment's checks (R4.1, R5.1, N-TERM, N-BAN, N-EXCL, id number, phone,
    district, specialties); one bad row and nothing is imported (422 `import_rejected` with `errors`: row,
    column, code, reason). A file that is not the template (not xlsx, other headers, > 5 MB, > 5 000 rows) is 422.
    """
    data = await read_upload(request)
    try:
        rows = await asyncio.to_thread(workbook.read_import, data)  # parsing 5 000 rows would block the loop
    except workbook.BadFile as exc:
        raise bad_file(exc) from exc
    imported = await svc.import_appointees(session, outbox=outbox, cipher=cipher, settings=settings, rows=rows,
                                           file_sha256=svc.sha256(data), actor=principal.subject)
    return {"imported": len(imported), "supervisors": imported}


@router.get("/supervisors/export",
            summary="导出名册（xlsx，默认脱敏；bureau_admin 以 unmasked=true 导出明文，记入审计，R3.1）",
            response_class=Response, responses={200: {"content": {workbook.XLSX_MEDIA_TYPE: {}}}})
async def export_roster(
    conn: ReadConnDep, session: SessionDep, cipher: CipherDep, settings: SettingsDep, principal: StaffReader,
    q: Annotated[RosterQuery, Query()],
    unmasked: Annotated[bool, Query(description="仅 bureau_admin：完整身份号码、手机号码与出生日期（记入审计）")
                        ] = False,
) -> Response:
    """The roster list's filters (GET /supervisors), every match in its order, one sheet."""
    if unmasked and not principal.has(Role.BUREAU_ADMIN):
        raise forbidden("仅市司法局管理员可以导出完整的身份号码、手机号码和出生日期。")
    filters = roster_filters(q, principal, settings)
    rows = await svc.export_rows(conn, cipher, filters=filters, unmasked=unmasked)
    await svc.audit_export(session, actor=principal.subject, rows=rows, filters=filters, unmasked=unmasked)
    data = await asyncio.to_thread(workbook.export, rows, status_zh=rules.STATUS_ZH, unmasked=unmasked)
    return xlsx(data, f"人民监督员名册{'（明文）' if unmasked else ''}{roster.today().isoformat()}.xlsx")

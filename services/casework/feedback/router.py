"""HTTP of opinions (R16.1), the feedback form and signatures (R17.1), adoption notices (R18.1)."""

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.casework import access, pdf
from services.casework.edge import (
    ANYONE,
    PROC,
    SettingsDep,
    b64,
)
from services.casework.feedback import service as svc
from services.casework.models import documents
from services.casework.schemas import (
    AdoptionIn,
    AdoptionRead,
    FormRead,
    OpinionIn,
    OpinionRead,
    OpinionVersionRead,
    SignIn,
)
from shared import clock
from shared.app import OutboxDep, SessionDep
from shared.auth import Principal, Role, ensure_self_or, require
from shared.documents import archive
from shared.errors import Unprocessable

router = APIRouter()


# --- opinions, form, signatures, adoption ---------------------------------------------------------

@router.put("/activities/{activity_id}/opinions/{supervisor_id}", response_model=OpinionRead,
            summary="如实记录监督意见（R16.1）", tags=["opinions"])
async def put_opinion(activity_id: uuid.UUID, supervisor_id: uuid.UUID, body: OpinionIn, session: SessionDep,
                      outbox: OutboxDep,
                      principal: Annotated[Principal, Depends(require(Role.PROCURATORATE, Role.SUPERVISOR))]) -> dict:
    act = await access.require_activity(session, activity_id, lock=True)
    return await svc.record_opinion(session, outbox=outbox, act=act, supervisor_id=supervisor_id, text=body.text,
                                    principal=principal)


@router.get("/activities/{activity_id}/opinions", response_model=list[OpinionRead], summary="监督意见",
            tags=["opinions"])
async def list_opinions(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> list:
    act = await access.require_activity(session, activity_id)
    await access.ensure_reader(session, principal, act)
    return await svc.list_opinions(session, activity_id)


@router.get("/activities/{activity_id}/opinions/{supervisor_id}/history", response_model=list[OpinionVersionRead],
            summary="监督意见的历次版本（R16.1）", tags=["opinions"])
async def opinion_history(activity_id: uuid.UUID, supervisor_id: uuid.UUID, session: SessionDep,
                          principal: ANYONE) -> list:
    act = await access.require_activity(session, activity_id)
    await access.ensure_reader(session, principal, act)
    return await svc.opinion_history(session, activity_id, supervisor_id)


@router.get("/activities/{activity_id}/feedback-form", response_model=FormRead,
            summary="《威海市人民监督员履职情况反馈表》内容与签字（R17.1）", tags=["feedback"])
async def get_form(activity_id: uuid.UUID, session: SessionDep, principal: ANYONE) -> dict:
    act = await access.require_activity(session, activity_id)
    await access.ensure_reader(session, principal, act)
    return await svc.form_view(session, act)


@router.get("/activities/{activity_id}/feedback-form.pdf", response_class=Response,
            summary="反馈表 PDF（可打印；全部签字确认后为存档件，带编号）", tags=["feedback"])
async def form_pdf(activity_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: ANYONE) -> Response:
    act = await access.require_activity(session, activity_id)
    await access.ensure_reader(session, principal, act)
    view = await svc.form_view(session, act)
    sigs = [{"supervisor_id": str(s["supervisor_id"]), "signed_at": s["signed_at"].astimezone(clock.SHANGHAI),
             "method": s["method"], "signature_hash": s["signature_hash"],
             "image": await svc.signature_image(session, act=act, supervisor_id=s["supervisor_id"])
             if s["has_image"] else None} for s in view["signatures"]]
    annex = [{**a, "decided_at": a["decided_at"].astimezone(clock.SHANGHAI)} for a in view["adoption_annex"]]
    completed = view["completed_at"].astimezone(clock.SHANGHAI) if view["completed_at"] else None
    data = pdf.form_document(view["content"], sigs, procuratorate=act.office or settings.procuratorate_name,
                             content_hash=view["content_hash"], annex=annex, completed_at=completed)
    dated = pdf.document_day(view["content"], completed, annex)
    name = f"feedback-{activity_id}.pdf"
    if view["number"] is None:  # R17.1: not yet signed by all: a working copy, unnumbered, never archived
        return Response(await asyncio.to_thread(pdf.render, data, dated=dated), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})
    # completed: the document of record, with the number its last signature gave it (a read never numbers)
    doc = await archive.issue(session, documents, kind=pdf.KIND, subject=str(activity_id), data=data,
                              render=lambda d: pdf.render(d, dated=dated), actor=principal.subject,
                              number=view["number"])
    return Response(doc.pdf, media_type="application/pdf", headers=archive.headers(doc, name))


@router.post("/activities/{activity_id}/feedback-form/signatures", response_model=FormRead,
             summary="人民监督员现场签字确认（R17.1）", tags=["feedback"])
async def sign(activity_id: uuid.UUID, body: SignIn, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
               principal: Annotated[Principal, Depends(require(Role.SUPERVISOR))]) -> dict:
    image = None
    if body.signature_image_base64:
        image = b64(body.signature_image_base64, "签名图片")
        if not image.startswith(b"\x89PNG\r\n\x1a\n") or len(image) > settings.signature_image_max_bytes:
            raise Unprocessable("invalid_signature_image", "签名图片无效", "手写签名须为 PNG 图片且不超过限制大小。")
    act = await access.require_activity(session, activity_id, lock=True)
    return await svc.sign(session, outbox=outbox, act=act, principal=principal, method=body.method,
                          expected_hash=body.content_hash, image=image)


@router.put("/activities/{activity_id}/adoptions/{supervisor_id}", response_model=AdoptionRead,
            summary="监督意见采纳情况告知（R18.1）", tags=["feedback"])
async def decide_adoption(activity_id: uuid.UUID, supervisor_id: uuid.UUID, body: AdoptionIn, session: SessionDep,
                          outbox: OutboxDep, principal: PROC) -> dict:
    act = await access.require_activity(session, activity_id, lock=True)
    access.ensure_procuratorate(principal, act)
    return await svc.decide_adoption(session, outbox=outbox, act=act, supervisor_id=supervisor_id,
                                     adopted=body.adopted, reason=body.reason, principal=principal)


@router.get("/supervisors/{supervisor_id}/adoption-notices", response_model=list[AdoptionRead],
            summary="本人收到的采纳情况告知（R18.1）", tags=["feedback"])
async def notices(supervisor_id: uuid.UUID, session: SessionDep,
                  principal: Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.BUREAU_ADMIN))]) -> list:
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    return await svc.notices_of(session, supervisor_id)

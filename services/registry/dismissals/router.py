"""HTTP of resignation, dismissal, exclusions (R7.1, R8.1, R9.1, R37.1, N-EXCL)."""

import uuid
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.engine import RowMapping

from services.registry import papers, rules
from services.registry.dismissals import service as svc
from services.registry.roster import service as roster
from services.registry.schemas import (
    CaseDecision,
    DismissalCreate,
    DismissalRead,
    ExclusionCreate,
    ExclusionLift,
    ExclusionRead,
    ResignationCreate,
    ResignationDecision,
    ResignationRead,
    SupervisorRead,
)
from services.registry.web import ADMIN, SettingsDep, audit_personal_read, authorize_record, to_read
from shared import clock
from shared.app import OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, forbidden, require
from shared.documents import archive
from shared.errors import NotFound
from shared.pagination import Page, PageDep

router = APIRouter(tags=["registry"])


@router.post("/supervisors/{supervisor_id}/exclusions", response_model=SupervisorRead,
             summary="记录不得担任情形（N-EXCL）")
async def record_exclusion(
    supervisor_id: uuid.UUID, body: ExclusionCreate, session: SessionDep, outbox: OutboxDep,
    principal: Principal = ADMIN,
) -> SupervisorRead:
    row = await svc.record_exclusion(session, outbox=outbox, supervisor_id=supervisor_id, ground=body.ground,
                                     note=body.note, actor=principal.subject)
    return to_read(row)


def exclusion_read(row: RowMapping) -> ExclusionRead:
    return ExclusionRead(**row, ground_label=rules.EXCLUSION_ZH.get(row["ground"], row["ground"]))


@router.get("/supervisors/{supervisor_id}/exclusions", response_model=list[ExclusionRead],
            summary="不得担任情形记录（N-EXCL）")
async def list_exclusions(supervisor_id: uuid.UUID, session: SessionDep,
                          principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR)),
                          ) -> list[ExclusionRead]:
    await roster.get(session, supervisor_id)
    await audit_personal_read(session, principal, supervisor_id, "read_exclusions", ["exclusions"])
    return [exclusion_read(r) for r in await svc.exclusions_of(session, supervisor_id)]


@router.post("/exclusions/{exclusion_id}/lift", response_model=ExclusionRead, summary="解除不得担任情形（N-EXCL）")
async def lift_exclusion(exclusion_id: uuid.UUID, body: ExclusionLift, session: SessionDep, outbox: OutboxDep,
                         principal: Principal = ADMIN) -> ExclusionRead:
    return exclusion_read(await svc.lift_exclusion(session, outbox=outbox, exclusion_id=exclusion_id,
                                                   reason=body.reason, actor=principal.subject))



@router.post("/supervisors/{supervisor_id}/resignations", status_code=201, response_model=ResignationRead,
             summary="辞职申请（R7.1）")
async def apply_resignation(supervisor_id: uuid.UUID, body: ResignationCreate, session: SessionDep,
                            principal: CurrentPrincipal) -> ResignationRead:
    row = await roster.get(session, supervisor_id)
    if not principal.has(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU) and not principal.is_self(supervisor_id):
        raise forbidden("仅本人或司法行政机关可以提交辞职申请。")
    authorize_record(principal, row)
    return ResignationRead(**await svc.apply_resignation(session, supervisor_id=supervisor_id, data=body,
                                                         actor=principal.subject))


@router.get("/supervisors/{supervisor_id}/resignations", response_model=list[ResignationRead],
            summary="辞职申请记录（R7.1，新者在前）")
async def list_resignations(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                            ) -> list[ResignationRead]:
    """R7.1: a person's applications and their decisions, so the bureau can find the pending one to decide; read as
    the person's record (R2.1 district scope, the supervisor their own) and audited like the other personal reads."""
    authorize_record(principal, await roster.get(session, supervisor_id))
    await audit_personal_read(session, principal, supervisor_id, "read_resignations", ["resignations"])
    return [ResignationRead(**r) for r in await svc.resignations_of(session, supervisor_id)]


@router.post("/resignations/{resignation_id}/decision", response_model=ResignationRead, summary="辞职申请决定")
async def decide_resignation(resignation_id: uuid.UUID, body: ResignationDecision, session: SessionDep,
                             outbox: OutboxDep, settings: SettingsDep, principal: Principal = ADMIN,
                             ) -> ResignationRead:
    return ResignationRead(**await svc.decide_resignation(
        session, outbox=outbox, settings=settings, resignation_id=resignation_id, approve=body.approve,
        note=body.note, actor=principal.subject))


def dismissal_read(row: RowMapping) -> DismissalRead:
    return DismissalRead(**row, ground_label=rules.GROUND_LABELS[rules.DismissalGround(row["ground"])])


@router.post("/supervisors/{supervisor_id}/dismissals", status_code=201, response_model=DismissalRead,
             summary="免除资格（R8.1、R9.1）")
async def dismiss(supervisor_id: uuid.UUID, body: DismissalCreate, session: SessionDep, outbox: OutboxDep,
                  settings: SettingsDep, principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.dismiss(session, outbox=outbox, settings=settings, supervisor_id=supervisor_id,
                                            data=body, actor=principal.subject))


@router.get("/dismissals", response_model=Page[DismissalRead], summary="免除资格案件")
async def list_dismissals(
    session: SessionDep, page: PageDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR)),
    status: Literal["pending", "confirmed", "rejected"] | None = None, supervisor_id: uuid.UUID | None = None,
) -> Page[DismissalRead]:
    rows, total = await svc.dismissals(session, status=status, supervisor_id=supervisor_id, limit=page.limit,
                                       offset=page.offset)
    return Page(items=[dismissal_read(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/dismissals/{dismissal_id}", response_model=DismissalRead,
            summary="免除资格详情（通知书、公告、收回记录）")
async def read_dismissal(dismissal_id: uuid.UUID, session: SessionDep,
                         principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR))) -> DismissalRead:
    return dismissal_read(await svc.get_dismissal(session, dismissal_id))


@router.post("/dismissals/{dismissal_id}/confirm", response_model=DismissalRead, summary="确认免除资格案件（R37.1）")
async def confirm_case(dismissal_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                       body: CaseDecision | None = None, principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.decide_case(
        session, outbox=outbox, settings=settings, dismissal_id=dismissal_id, confirm=True,
        evidence_note=body.evidence_note if body else None, actor=principal.subject))


@router.post("/dismissals/{dismissal_id}/reject", response_model=DismissalRead, summary="驳回免除资格案件")
async def reject_case(dismissal_id: uuid.UUID, session: SessionDep, outbox: OutboxDep, settings: SettingsDep,
                      principal: Principal = ADMIN) -> DismissalRead:
    return dismissal_read(await svc.decide_case(
        session, outbox=outbox, settings=settings, dismissal_id=dismissal_id, confirm=False, evidence_note=None,
        actor=principal.subject))


PDF = {200: {"content": {"application/pdf": {}}}}


def _pdf(doc: archive.Issued, name: str) -> Response:
    return Response(doc.pdf, media_type="application/pdf", headers=archive.headers(doc, name))


async def _decided(session, dismissal_id: uuid.UUID) -> RowMapping:
    row = await svc.get_dismissal(session, dismissal_id)
    if row["status"] != "confirmed":
        raise NotFound("免除资格通知书", dismissal_id)
    return row


@router.get("/dismissals/{dismissal_id}/notices/{recipient_kind}.pdf", response_class=Response, responses=PDF,
            summary="免除资格通知书 PDF（R9.1；本人、工作单位、推荐单位、检察院；公文格式，文号，存档）")
async def dismissal_notice_pdf(
    dismissal_id: uuid.UUID, recipient_kind: Literal["person", "employer", "recommending_body", "procuratorate"],
    session: SessionDep, settings: SettingsDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR)),
) -> Response:
    row = await _decided(session, dismissal_id)
    record = next(n for n in row["notices"] if n["recipient_kind"] == recipient_kind)
    data = papers.dismissal_notice_document(record, authority=settings.bureau_name)
    doc = await papers.issue(session, kind=papers.NOTICE_KIND, subject=f"{dismissal_id}:{recipient_kind}",
                             data=data, actor=principal.subject, number=record.get("number"))
    return _pdf(doc, f"dismissal-{dismissal_id}-{recipient_kind}.pdf")


@router.get("/dismissals/{dismissal_id}/announcement.pdf", response_class=Response, responses=PDF,
            summary="免除资格公告 PDF（R9.1；公文格式，文号，存档）")
async def dismissal_announcement_pdf(dismissal_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                                     principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR))
                                     ) -> Response:
    row = await _decided(session, dismissal_id)
    data = papers.announcement_document(row["announcement"], authority=settings.bureau_name,
                                        on=clock.local_date(row["decided_at"]))
    doc = await papers.issue(session, kind=papers.ANNOUNCEMENT_KIND, subject=str(dismissal_id), data=data,
                             actor=principal.subject, number=row["announcement_number"])
    return _pdf(doc, f"announcement-{dismissal_id}.pdf")

"""HTTP of the appraisal service: parse, authorize, call the service, shape the answer."""

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.appraisal import ledger, papers, worklists
from services.appraisal import service as svc
from services.appraisal.config import AppraisalSettings
from services.appraisal.models import supervisor
from services.appraisal.schemas import (
    AppraisalOfRead,
    BackIn,
    CandidatesRead,
    ConductCreate,
    ConsultationIn,
    ConsultationRead,
    CorrectionIn,
    DefenceNoticeIn,
    DefenceNoticeRead,
    FiguresRead,
    GradeIn,
    GradeRead,
    HistoryRead,
    JustificationIn,
    LedgerEntryRead,
    LedgerRead,
    LedgerSummaryRead,
    NoticeRead,
    OpinionIn,
    OverdueRead,
    ParticipantRead,
    ProposalRead,
    ResultRead,
    ResultStatisticsRead,
    RoundCreate,
    RoundListItem,
    RoundRead,
    State,
    StatementIn,
    StepIn,
    StepRead,
    SummaryIn,
)
from shared import audit
from shared import pagination as paging
from shared.app import CalendarDep, CipherDep, OutboxDep, SessionDep
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, ensure_self_or, forbidden, require
from shared.documents import archive, tables
from shared.errors import NotFound
from shared.pagination import Page, PageDep

router = APIRouter()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Admin = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN))]
LedgerReader = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR, Role.DISTRICT_BUREAU,
                                                    Role.SUPERVISOR))]
RoundReader = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.AUDITOR, Role.DISTRICT_BUREAU))]
Year = Annotated[int, Path(ge=2024, le=2999, description="年度")]
CITY = (Role.BUREAU_ADMIN, Role.AUDITOR)


def settings_of(request: Request) -> AppraisalSettings:
    return request.app.state.settings


SettingsDep = Annotated[AppraisalSettings, Depends(settings_of)]


async def _audit_read(request: Request, session, principal: Principal, action: str, subject: str) -> None:
    await audit.append(session, request.app.state.platform.audit, actor=principal.subject, action=action,
                           subject=subject, details={})


async def authorize_ledger(session, principal: Principal, supervisor_id: uuid.UUID):
    """R2.1/R28.1: bureau and auditor all; district bureau its own district; a supervisor their own ledger."""
    person = (await session.execute(select(supervisor).where(supervisor.c.id == supervisor_id))).first()
    if principal.has(*CITY):
        return person
    if principal.has(Role.DISTRICT_BUREAU):
        ensure_district(principal, person.district if person else None)
        return person
    ensure_self_or(principal, supervisor_id, *CITY)
    return person


# --- ledger (R28.1) ------------------------------------------------------------------------------


@router.get("/ledger/{year}.xlsx", tags=["ledger"], summary="导出年度台账汇总（xlsx；区市司法局仅本辖区）",
            response_class=Response, responses={200: {"content": {XLSX: {}}}})
async def export_district_ledger(year: Year, request: Request, session: SessionDep, principal: RoundReader,
                                 district: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    if not principal.has(*CITY):
        ensure_district(principal, district or principal.district)
        district = principal.district
    await _audit_read(request, session, principal, "ledger.district_exported", f"ledger:{district or 'all'}:{year}")
    content = await ledger.export_district_xlsx(session, year, district=district)
    return Response(content, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="ledger-{year}.xlsx"'})


@router.get("/ledger/{supervisor_id}/{year}.xlsx", tags=["ledger"], summary="导出履职工作台账（xlsx，R28.1）",
            response_class=Response, responses={200: {"content": {XLSX: {}}}})
async def export_ledger(supervisor_id: uuid.UUID, year: Year, request: Request, session: SessionDep,
                        principal: LedgerReader) -> Response:
    person = await authorize_ledger(session, principal, supervisor_id)
    figures = await ledger.figures_of(session, supervisor_id, year)
    rows = await ledger.entries(session, supervisor_id, year)
    await _audit_read(request, session, principal, "ledger.exported", f"ledger:{supervisor_id}:{year}")
    content = ledger.export_xlsx(person=dict(person._mapping) if person else {}, year=year, figures=figures,
                                 rows=rows)
    return Response(content, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="ledger-{supervisor_id}-{year}.xlsx"'})


PDF = "application/pdf"


def _pdf(content: bytes, name: str, headers: dict[str, str] | None = None) -> Response:
    return Response(content, media_type=PDF, headers=headers or {"Content-Disposition": f'inline; filename="{name}"'})


@router.get("/ledger/{year}.pdf", tags=["ledger"], summary="年度台账汇总 PDF（R28.1；区市司法局仅本辖区）",
            response_class=Response, responses={200: {"content": {PDF: {}}}})
async def district_ledger_pdf(year: Year, request: Request, session: SessionDep, principal: RoundReader,
                              district: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    if not principal.has(*CITY):
        ensure_district(principal, district or principal.district)
        district = principal.district
    await _audit_read(request, session, principal, "ledger.district_exported", f"ledger:{district or 'all'}:{year}")
    data = papers.district_ledger_document(year=year, district=district,
                                           rows=await papers.district_rows(session, year, district=district))
    return _pdf(await asyncio.to_thread(tables.render, data, dated=svc.today()), f"ledger-{year}.pdf")


@router.get("/ledger/{supervisor_id}/{year}.pdf", tags=["ledger"], summary="履职工作台账 PDF（R28.1）",
            response_class=Response, responses={200: {"content": {PDF: {}}}})
async def ledger_pdf(supervisor_id: uuid.UUID, year: Year, request: Request, session: SessionDep,
                     principal: LedgerReader) -> Response:
    person = await authorize_ledger(session, principal, supervisor_id)
    figures = await ledger.figures_of(session, supervisor_id, year)
    rows = await ledger.entries(session, supervisor_id, year)
    await _audit_read(request, session, principal, "ledger.exported", f"ledger:{supervisor_id}:{year}")
    data = papers.person_ledger_document(person=dict(person._mapping) if person else {}, year=year,
                                         figures=figures, rows=rows)
    return _pdf(await asyncio.to_thread(tables.render, data, dated=svc.today()),
                f"ledger-{supervisor_id}-{year}.pdf")


def entry_read(row) -> LedgerEntryRead:
    """A ledger entry with its kind and sub-kind in Chinese (the ledger's own words, R28.1)."""
    return LedgerEntryRead(**row._mapping, kind_label=ledger.KIND_ZH.get(row.kind, row.kind),
                           subkind_label=ledger.subkind_label(row.kind, row.subkind))


@router.get("/ledger/{supervisor_id}/{year}", tags=["ledger"], summary="履职工作台账（R28.1）")
async def get_ledger(supervisor_id: uuid.UUID, year: Year, request: Request, session: SessionDep,
                     principal: LedgerReader) -> LedgerRead:
    person = await authorize_ledger(session, principal, supervisor_id)
    figures = await ledger.figures_of(session, supervisor_id, year)
    rows = await ledger.entries(session, supervisor_id, year)
    await _audit_read(request, session, principal, "ledger.read", f"ledger:{supervisor_id}:{year}")
    return LedgerRead(supervisor_id=supervisor_id, year=year, name=person.name if person else None,
                      district=person.district if person else None, figures=FiguresRead(**figures.__dict__),
                      entries=[entry_read(r) for r in rows])


@router.get("/supervisors/{supervisor_id}/appraisals", tags=["results"],
            summary="本人历次考核：轮次、进度与确定的等次（R38.1；本人、本辖区或市级可读）")
async def appraisals_of(supervisor_id: uuid.UUID, request: Request, session: SessionDep,
                        principal: LedgerReader) -> list[AppraisalOfRead]:
    """A person's appraisal history for their page: each round with its state and the grade once finalized."""
    await authorize_ledger(session, principal, supervisor_id)
    await _audit_read(request, session, principal, "appraisals.read", f"supervisor:{supervisor_id}")
    return [AppraisalOfRead(**a) for a in await svc.appraisals_of(session, supervisor_id)]


@router.get("/ledger", tags=["ledger"], summary="年度台账汇总（区市司法局仅见本辖区）")
async def list_ledger(session: SessionDep, page: PageDep, principal: RoundReader,
                      year: Annotated[int, Query(ge=2024, le=2999)],
                      district: Annotated[str | None, Query(max_length=100)] = None) -> Page[LedgerSummaryRead]:
    if not principal.has(*CITY):
        ensure_district(principal, district or principal.district)
        district = principal.district
    items, seen = [], 0
    async for row in ledger.stream_summary(session, year, district=district, batch=500):  # everyone of the year
        if page.offset <= seen < page.offset + page.limit:
            items.append(LedgerSummaryRead(supervisor_id=row.supervisor_id, name=row.name, district=row.district,
                                           figures=FiguresRead(**ledger.to_figures(row).__dict__)))
        seen += 1
    return Page(items=items, total=seen, limit=page.limit, offset=page.offset)


@router.post("/ledger/{supervisor_id}/conduct", status_code=201, tags=["ledger"],
             summary="录入遵纪守法、道德、提醒教育、其他活动或变更逾期记录（R28.1、R32.1）")
async def add_conduct(supervisor_id: uuid.UUID, body: ConductCreate, session: SessionDep,
                      principal: Admin) -> LedgerEntryRead:
    entry_id = await ledger.record_conduct(session, actor=principal.subject, supervisor_id=supervisor_id,
                                           conduct_kind=body.kind, text=body.text, occurred_on=body.occurred_on,
                                           ground=body.ground)
    await svc._audit(session, actor=principal.subject, action="ledger.conduct_recorded",
                     subject=f"ledger:{supervisor_id}", kind=body.kind, ground=body.ground, entry_id=entry_id)
    rows = await ledger.entries(session, supervisor_id, body.occurred_on.year)
    return entry_read(next(r for r in rows if r.id == entry_id))


# --- rounds (R29.1, R34.1) -----------------------------------------------------------------------


async def round_read(session, round_id: uuid.UUID) -> RoundRead:
    row = await svc.get_round(session, round_id)
    cap = await svc.cap_status(session, row)
    return RoundRead(**row._mapping, appraised=cap.appraised, excellent_count=cap.excellent,
                     excellent_allowed=cap.allowed, cap_exceeded=cap.exceeded,
                     consultations=[ConsultationRead(**c._mapping) for c in await svc.consultations(session, round_id)],
                     steps=[StepRead(**s._mapping) for s in await svc.steps(session, round_id)])


@router.post("/rounds", status_code=201, tags=["rounds"], summary="启动年度或任期考核（R29.1）")
async def open_round(body: RoundCreate, session: SessionDep, settings: SettingsDep, principal: Admin) -> RoundRead:
    round_id = await svc.open_round(session, settings, actor=principal.subject, kind=body.kind, year=body.year,
                                    term_start=body.term_start, term_end=body.term_end,
                                    supervisor_ids=body.supervisor_ids)
    return await round_read(session, round_id)


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """R2.1: the district a list is limited to: any (or none) for city-wide roles; a district bureau's own
    (asking for another is a 403 `R2.1`)."""
    if principal.is_citywide or not principal.has(*DISTRICT_SCOPED_ROLES):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


RoundKind = Literal["annual", "term"]
RoundSort = Literal["created_at", "-created_at", "since", "-since"]
ActingRole = Literal["bureau_admin", "district_bureau", "procuratorate", "supervisor"]
ROUND_KEY_TYPES = (datetime, uuid.UUID)


@router.get("/rounds", tags=["rounds"],
            summary="考核工作清单：轮次及其待办步骤（由谁办理、自何时起），按年度、类别、状态、区市筛选，游标分页")
async def list_rounds(
    session: SessionDep, cipher: CipherDep, principal: RoundReader,
    year: Annotated[int | None, Query(ge=2024, le=2999, description="年度（任期考核：任期覆盖该年）")] = None,
    kind: Annotated[list[RoundKind] | None, Query(description="annual 年度、term 任期，可重复")] = None,
    state: Annotated[list[State] | None, Query(description="状态，可重复")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=100, description="有该区市人员参加的轮次")] = None,
    role: Annotated[ActingRole | None, Query(description="只看等待该角色办理的轮次（R34.1）")] = None,
    sort: Annotated[RoundSort, Query(description="启动时间或进入当前步骤的时间，“-”为倒序")] = "-created_at",
    limit: paging.Limit = 50, cursor: paging.CursorParam = None,
) -> paging.CursorPage[RoundListItem]:
    """R34.1: each round with the step it waits for (`pending`: action, who acts, not before), since when it is in
    its state and who moved it there; district bureaus see the rounds of their district (R2.1)."""
    district = scoped_district(principal, district)
    kinds, states = sorted(set(kind or [])), sorted(set(state or []))
    filters = {"year": year, "kind": kinds, "state": states, "district": district, "role": role, "sort": sort}
    sign = paging.signer(cipher)
    after = paging.decode(sign, cursor, scope="appraisal.rounds", filters=filters, types=ROUND_KEY_TYPES)
    items, total, next_key = await worklists.list_rounds(session, year=year, kinds=kinds, states=states,
                                                         district=district, role=role, sort=sort, limit=limit,
                                                         after=after)
    return paging.CursorPage(items=[RoundListItem(**i) for i in items], total=total, limit=limit,
                             next_cursor=None if next_key is None else
                             paging.encode(sign, scope="appraisal.rounds", filters=filters, key=next_key))


@router.get("/rounds/{round_id}", tags=["rounds"], summary="考核轮次（含每一步的操作人和时间）")
async def get_round(round_id: uuid.UUID, session: SessionDep, principal: RoundReader) -> RoundRead:
    return await round_read(session, round_id)


@router.post("/rounds/{round_id}/steps/{state}", tags=["rounds"], summary="推进考核程序到下一步（R34.1）")
async def advance(round_id: uuid.UUID, state: Literal["self_summaries", "reviewed", "district_proposed",
                                                      "bureau_proposed", "public_notice", "finalized"],
                  session: SessionDep, outbox: OutboxDep, calendar: CalendarDep, settings: SettingsDep,
                  principal: Admin, body: StepIn | None = None) -> RoundRead:
    body = body or StepIn()
    await svc.advance(session, settings, calendar, outbox, actor=principal.subject, round_id=round_id, to=state,
                      note=body.note, notice_days=body.notice_days)
    return await round_read(session, round_id)


@router.post("/rounds/{round_id}/back", tags=["rounds"], summary="退回上一步（须说明理由；确定前）（R30.1、R34.1）")
async def back(round_id: uuid.UUID, body: BackIn, session: SessionDep, principal: Admin) -> RoundRead:
    await svc.back(session, actor=principal.subject, round_id=round_id, reason=body.reason)
    return await round_read(session, round_id)


@router.get("/rounds/{round_id}/history", tags=["rounds"], summary="考核轮次的全部操作记录（推进、退回、更正）")
async def round_history(round_id: uuid.UUID, session: SessionDep, principal: RoundReader) -> list[HistoryRead]:
    await svc.get_round(session, round_id)
    return [HistoryRead(**h._mapping) for h in await svc.history(session, round_id)]


@router.put("/rounds/{round_id}/cap-justification", tags=["rounds"],
            summary="优秀等次超过 15% 的理由说明（R30.1，须另一名市司法局人员批准）")
async def put_cap_justification(round_id: uuid.UUID, body: JustificationIn, session: SessionDep,
                                principal: Admin) -> RoundRead:
    await svc.justify_cap(session, actor=principal.subject, round_id=round_id, text=body.text,
                          excellent_count=body.excellent_count)
    return await round_read(session, round_id)


@router.post("/rounds/{round_id}/cap-justification/approval", tags=["rounds"],
             summary="批准超出比例的理由说明（R30.1，不能批准本人的说明）")
async def approve_cap_justification(round_id: uuid.UUID, session: SessionDep, principal: Admin) -> RoundRead:
    await svc.approve_cap(session, actor=principal.subject, round_id=round_id)
    return await round_read(session, round_id)


@router.put("/rounds/{round_id}/districts/{district}/consultation", tags=["rounds"],
            summary="区市司法局征求同级人民检察院意见（R34.1(3)，仅本辖区）")
async def put_consultation(round_id: uuid.UUID, district: Annotated[str, Path(max_length=100)],
                           body: ConsultationIn, session: SessionDep,
                           principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU))]
                           ) -> RoundRead:
    if not principal.has(Role.BUREAU_ADMIN):
        ensure_district(principal, district)
    await svc.record_consultation(session, actor=principal.subject, round_id=round_id, district=district,
                                  note=body.note)
    return await round_read(session, round_id)

@router.post("/rounds/{round_id}/participants/sync", tags=["rounds"],
             summary="补充启动后新任命（或新同步）的在任人民监督员（仅启动阶段）")
async def sync_participants(round_id: uuid.UUID, session: SessionDep, principal: Admin) -> RoundRead:
    await svc.add_serving(session, actor=principal.subject, round_id=round_id)
    return await round_read(session, round_id)


def district_scope(principal: Principal) -> str | None:
    return None if principal.has(*CITY) else principal.district


@router.get("/rounds/{round_id}/participants", tags=["rounds"], summary="参加考核人员（区市仅见本辖区）")
async def list_participants(round_id: uuid.UUID, session: SessionDep, principal: RoundReader
                            ) -> list[ParticipantRead]:
    await svc.get_round(session, round_id)
    return [ParticipantRead(**p._mapping) for p in
            await svc.participants(session, round_id, district=district_scope(principal))]


@router.get("/rounds/{round_id}/proposals", tags=["rounds"],
            summary="台账数据、建议等次（R33.1）、优秀候选（R31.1）、不合格情形记录（R32.1）")
async def get_proposals(round_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                        principal: RoundReader) -> list[ProposalRead]:
    return [ProposalRead(**p) for p in
            await svc.proposals(session, settings, round_id, district=district_scope(principal))]


@router.get("/rounds/{round_id}/candidates", tags=["rounds"], summary="优秀等次候选人排序（R31.1，R30.1 名额）")
async def get_candidates(round_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                         principal: Annotated[Principal, Depends(require(*CITY))]) -> CandidatesRead:
    return CandidatesRead(**await svc.candidates(session, settings, round_id))


async def _person(session, round_id: uuid.UUID, supervisor_id: uuid.UUID):
    await svc.get_round(session, round_id)
    return await svc.get_participant(session, round_id, supervisor_id)


@router.put("/rounds/{round_id}/participants/{supervisor_id}/self-summary", tags=["rounds"],
            summary="个人总结（R34.1(1)）")
async def put_self_summary(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: SummaryIn, session: SessionDep,
                           principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.SUPERVISOR))]
                           ) -> ParticipantRead:
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    await svc.set_self_summary(session, actor=principal.subject, round_id=round_id, supervisor_id=supervisor_id,
                               text=body.text)
    return await _participant_read(session, round_id, supervisor_id)


async def _participant_read(session, round_id: uuid.UUID, supervisor_id: uuid.UUID) -> ParticipantRead:
    rows = await svc.participants(session, round_id)
    return ParticipantRead(**next(p for p in rows if p.supervisor_id == supervisor_id)._mapping)


@router.put("/rounds/{round_id}/participants/{supervisor_id}/opinion", tags=["rounds"],
            summary="检察院意见、所在单位或社区意见（R34.1(2)）")
async def put_opinion(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: OpinionIn, session: SessionDep,
                      principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.PROCURATORATE))]
                      ) -> ParticipantRead:
    person = await _person(session, round_id, supervisor_id)
    if not principal.has(Role.BUREAU_ADMIN):
        if body.source != "procuratorate":
            raise forbidden("检察院只能提交检察院意见。")
        ensure_district(principal, person.district)
    await svc.set_opinion(session, actor=principal.subject, round_id=round_id, supervisor_id=supervisor_id,
                          source=body.source, text=body.text)
    return await _participant_read(session, round_id, supervisor_id)


@router.put("/rounds/{round_id}/participants/{supervisor_id}/district-grade", tags=["rounds"],
            summary="区市司法局等次建议（R34.1(3)，仅本辖区）")
async def put_district_grade(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: GradeIn, session: SessionDep,
                             principal: Annotated[Principal, Depends(require(Role.DISTRICT_BUREAU))]
                             ) -> GradeRead:
    person = await _person(session, round_id, supervisor_id)
    ensure_district(principal, person.district)
    await svc.set_district_grade(session, actor=principal.subject, district=principal.district, round_id=round_id,
                                 supervisor_id=supervisor_id, grade=body.grade)
    return GradeRead(supervisor_id=supervisor_id, grade=body.grade)


@router.put("/rounds/{round_id}/participants/{supervisor_id}/grade", tags=["rounds"],
            summary="市司法局拟定等次（R34.1(4)；不合格须有 R32.1 情形；任期 R36.1）")
async def put_grade(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: GradeIn, session: SessionDep,
                    principal: Admin) -> GradeRead:
    grade = await svc.set_bureau_grade(session, actor=principal.subject, round_id=round_id,
                                       supervisor_id=supervisor_id, grade=body.grade, grounds=body.grounds,
                                       criteria=_criteria(body))
    return await _grade_read(session, round_id, supervisor_id, grade)


def _criteria(body: GradeIn) -> dict | None:
    return {k: v.model_dump() for k, v in body.excellent_criteria.items()} if body.excellent_criteria else None


async def _grade_read(session, round_id: uuid.UUID, supervisor_id: uuid.UUID, grade: str,
                      version: int | None = None) -> GradeRead:
    """The grade with the R30.1 flag: how many excellent against floor(15 % × appraised)."""
    rnd = await svc.get_round(session, round_id)
    cap = await svc.cap_status(session, rnd)
    return GradeRead(supervisor_id=supervisor_id, grade=grade, excellent_count=cap.excellent,
                     excellent_allowed=cap.allowed, cap_exceeded=cap.exceeded, state=rnd.state, result_version=version)


@router.post("/rounds/{round_id}/participants/{supervisor_id}/grade-correction", tags=["rounds"],
             summary="确定前更正拟定等次（须说明理由；公示前后均可，更正后重新拟定和公示）")
async def correct_grade(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: CorrectionIn, session: SessionDep,
                        principal: Admin) -> GradeRead:
    grade = await svc.correct_grade(session, actor=principal.subject, round_id=round_id, supervisor_id=supervisor_id,
                                    grade=body.grade, grounds=body.grounds, criteria=_criteria(body),
                                    reason=body.reason)
    return await _grade_read(session, round_id, supervisor_id, grade)


@router.post("/rounds/{round_id}/participants/{supervisor_id}/result-correction", tags=["results"],
             summary="确定后更正考核结果（须说明理由；发布更正后的 AppraisalFinalized，原结果保留）")
async def correct_result(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: CorrectionIn, session: SessionDep,
                         outbox: OutboxDep, settings: SettingsDep, principal: Admin) -> GradeRead:
    version = await svc.correct_result(session, settings, outbox, actor=principal.subject, round_id=round_id,
                                       supervisor_id=supervisor_id, grade=body.grade, grounds=body.grounds,
                                       criteria=_criteria(body), reason=body.reason)
    row = await svc.get_participant(session, round_id, supervisor_id)
    return await _grade_read(session, round_id, supervisor_id, row.final_grade, version)


@router.get("/rounds/{round_id}/participants/{supervisor_id}/results", tags=["results"],
            summary="考核结果的各个版本（更正前的结果保留）")
async def list_results(round_id: uuid.UUID, supervisor_id: uuid.UUID, session: SessionDep,
                       principal: RoundReader) -> list[ResultRead]:
    person = await _person(session, round_id, supervisor_id)
    if not principal.has(*CITY):
        ensure_district(principal, person.district)
    return [ResultRead(**r._mapping) for r in await svc.results_of(session, round_id, supervisor_id)]


@router.post("/rounds/{round_id}/participants/{supervisor_id}/defence-notice", tags=["rounds"],
             summary="告知不合格理由、依据及陈述申辩权利（R35.1）")
async def post_defence_notice(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: DefenceNoticeIn,
                              session: SessionDep, settings: SettingsDep, calendar: CalendarDep,
                              outbox: OutboxDep, principal: Admin) -> DefenceNoticeRead:
    sent = await svc.send_defence_notice(session, settings, calendar, outbox, actor=principal.subject,
                                         round_id=round_id,
                                         supervisor_id=supervisor_id, reasons=body.reasons, basis=body.basis,
                                         window_days=body.window_days)
    return DefenceNoticeRead(supervisor_id=supervisor_id, **sent)


@router.post("/rounds/{round_id}/participants/{supervisor_id}/statement", tags=["rounds"],
             summary="记录陈述和申辩（R35.1）")
async def post_statement(round_id: uuid.UUID, supervisor_id: uuid.UUID, body: StatementIn, session: SessionDep,
                         principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.SUPERVISOR))]
                         ) -> ParticipantRead:
    ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN)
    await svc.record_statement(session, actor=principal.subject, by_self=principal.is_self(supervisor_id),
                               round_id=round_id, supervisor_id=supervisor_id, text=body.text, final=body.final,
                               received_on=body.received_on)
    return await _participant_read(session, round_id, supervisor_id)


@router.get("/rounds/{round_id}/notices", tags=["results"], summary="考核结果通知与通报表扬（R38.1、R39.1）")
async def list_notices(round_id: uuid.UUID, session: SessionDep,
                       principal: Annotated[Principal, Depends(require(*CITY, Role.SUPERVISOR))],
                       supervisor_id: uuid.UUID | None = None,
                       kind: Annotated[Literal["result", "commendation"] | None, Query(
                           description="result 考核结果通知，commendation 通报表扬")] = None) -> list[NoticeRead]:
    await svc.get_round(session, round_id)
    if not principal.has(*CITY):
        if supervisor_id is not None and not principal.is_self(supervisor_id):
            raise forbidden("人民监督员只能查看本人的考核通知。")
        supervisor_id = uuid.UUID(principal.supervisor_id)
    return [NoticeRead(**n._mapping) for n in await svc.notices(session, round_id, supervisor_id=supervisor_id,
                                                                kind=kind)]


@router.get("/rounds/{round_id}/notices/{notice_id}.pdf", tags=["results"],
            summary="考核结果通知、通报表扬 PDF（R38.1、R39.1；公文格式，文号）", response_class=Response,
            responses={200: {"content": {PDF: {}}}})
async def notice_pdf(round_id: uuid.UUID, notice_id: int, session: SessionDep, settings: SettingsDep,
                     principal: Annotated[Principal, Depends(require(*CITY, Role.SUPERVISOR))]) -> Response:
    await svc.get_round(session, round_id)
    row = await svc.notice_of(session, round_id, notice_id)
    if not principal.has(*CITY) and (row.supervisor_id is None or not principal.is_self(row.supervisor_id)):
        raise forbidden("人民监督员只能查看本人的考核通知。")
    doc = await papers.issue_notice(session, kind=f"appraisal_{row.kind}", subject=f"notice:{row.id}",
                                    doc=svc.notice_document(row), authority=settings.bureau_name,
                                    actor=principal.subject, number=row.number)
    return _pdf(doc.pdf, "", archive.headers(doc, f"notice-{row.id}.pdf"))


@router.get("/rounds/{round_id}/participants/{supervisor_id}/defence-notice.pdf", tags=["rounds"],
            summary="告知书 PDF（R35.1；公文格式，文号）", response_class=Response,
            responses={200: {"content": {PDF: {}}}})
async def defence_notice_pdf(round_id: uuid.UUID, supervisor_id: uuid.UUID, session: SessionDep,
                             settings: SettingsDep,
                             principal: Annotated[Principal, Depends(require(*CITY, Role.SUPERVISOR))]) -> Response:
    ensure_self_or(principal, supervisor_id, *CITY)
    data, number = await svc.defence_document(session, settings, round_id, supervisor_id)
    doc = await papers.issue_notice(session, kind="appraisal_defence_notice", subject=f"{round_id}:{supervisor_id}",
                                    doc=data, authority=settings.bureau_name, actor=principal.subject, number=number)
    return _pdf(doc.pdf, "", archive.headers(doc, f"defence-notice-{supervisor_id}.pdf"))


@router.get("/rounds/{round_id}/public-notice.pdf", tags=["rounds"],
            summary="优秀等次公示 PDF（R34.1(5)；公文格式，文号）", response_class=Response,
            responses={200: {"content": {PDF: {}}}})
async def public_notice_pdf(round_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                            principal: RoundReader) -> Response:
    rnd = await svc.get_round(session, round_id)
    if not rnd.notice_document:
        raise NotFound("公示", round_id)
    doc = await papers.issue_notice(session, kind="appraisal_public_notice", subject=str(round_id),
                                    doc=rnd.notice_document, authority=settings.bureau_name, actor=principal.subject,
                                    number=rnd.notice_number)
    return _pdf(doc.pdf, "", archive.headers(doc, f"public-notice-{round_id}.pdf"))


@router.post("/rounds/{round_id}/deadlines/{which}/done", tags=["results"],
             summary="登记已录入系统（5 个工作日）或已上报省司法厅（10 个工作日）（R34.1(6)）")
async def mark_deadline(round_id: uuid.UUID, which: Literal["entered", "reported"], session: SessionDep,
                        principal: Admin) -> RoundRead:
    await svc.mark_deadline(session, actor=principal.subject, round_id=round_id, which=which)
    return await round_read(session, round_id)


@router.get("/deadlines/overdue", tags=["results"], summary="逾期未录入或未上报的考核（R34.1(6)）")
async def overdue(session: SessionDep, principal: Annotated[Principal, Depends(require(*CITY))]
                  ) -> list[OverdueRead]:
    return [OverdueRead(**o) for o in await svc.overdue_deadlines(session, svc.today())]


# --- statistics (R30.1, R37.1) -------------------------------------------------------------------


@router.get("/statistics/results", tags=["statistics"],
            summary="考核结果统计：按年度、等次、区市（已确定的结果；区市司法局仅本辖区）")
async def result_statistics(
    session: SessionDep, principal: RoundReader,
    year: Annotated[int | None, Query(ge=2024, le=2999, description="年度（任期考核为任期届满之年）")] = None,
    kind: Annotated[RoundKind, Query(description="annual 年度考核、term 任期考核")] = "annual",
    district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> ResultStatisticsRead:
    district = scoped_district(principal, district)
    return ResultStatisticsRead(**await worklists.result_statistics(session, year=year, kind=kind, district=district))

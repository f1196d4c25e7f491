"""HTTP of appointments: appoint (R4.1, R5.1, N-TERM, N-BAN, N-EXCL), history, the term end (R4.1)."""

import uuid

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.registry import papers
from services.registry.appointments import service as svc
from services.registry.roster import service as roster
from services.registry.schemas import AppointmentCreate, AppointmentRead, SupervisorRead
from services.registry.web import ADMIN, SettingsDep, audit_personal_read, authorize_record, to_read
from shared.app import OutboxDep, SessionDep
from shared.auth import CurrentPrincipal, Principal, Role, require
from shared.documents import archive
from shared.errors import NotFound

router = APIRouter(tags=["registry"])


@router.post("/supervisors/term-end-sweep", summary="任期届满处理（每日运行）")
async def end_terms(session: SessionDep, outbox: OutboxDep,
                    principal: Principal = Depends(require(Role.BUREAU_ADMIN, Role.SERVICE))) -> dict[str, int]:
    """Active supervisors whose 5-year term has ended become `term_ended` and ineligible (a daily job calls it)."""
    return {"ended": await svc.end_terms(session, outbox=outbox, actor=principal.subject)}


@router.post("/supervisors/{supervisor_id}/appointments", status_code=201, response_model=SupervisorRead,
             summary="任命（R4.1、R5.1、N-TERM、N-BAN）")
async def appoint(
    supervisor_id: uuid.UUID, body: AppointmentCreate, session: SessionDep, outbox: OutboxDep,
    settings: SettingsDep, principal: Principal = ADMIN,
) -> SupervisorRead:
    row = await svc.appoint(session, outbox=outbox, settings=settings, supervisor_id=supervisor_id, data=body,
                            actor=principal.subject)
    return to_read(row)


@router.get("/supervisors/{supervisor_id}/appointments", response_model=list[AppointmentRead], summary="任命记录")
async def list_appointments(supervisor_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                            ) -> list[AppointmentRead]:
    authorize_record(principal, await roster.get(session, supervisor_id))
    await audit_personal_read(session, principal, supervisor_id, "read_appointments", ["appointments"])
    return [AppointmentRead(**r) for r in await svc.appointments_of(session, supervisor_id)]


@router.get("/supervisors/{supervisor_id}/appointments/{appointment_id}/certificate.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}}, summary="人民监督员选任证书 PDF（R5.1；存档）")
async def certificate_pdf(supervisor_id: uuid.UUID, appointment_id: uuid.UUID, session: SessionDep,
                          settings: SettingsDep, principal: CurrentPrincipal) -> Response:
    person = await roster.get(session, supervisor_id)
    authorize_record(principal, person)
    found = [a for a in await svc.appointments_of(session, supervisor_id) if a["id"] == appointment_id]
    if not found:
        raise NotFound("任命记录", appointment_id)
    await audit_personal_read(session, principal, supervisor_id, "read_certificate", ["appointments"])
    data = papers.certificate_document(name=person["name"], appointment=dict(found[0]), bureau=settings.bureau_name)
    doc = await papers.issue(session, kind=papers.CERTIFICATE_KIND, subject=str(appointment_id), data=data,
                             actor=principal.subject)
    return Response(doc.pdf, media_type="application/pdf",
                    headers=archive.headers(doc, f"certificate-{appointment_id}.pdf"))

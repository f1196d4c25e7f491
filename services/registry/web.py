"""HTTP helpers shared by the registry routers: dependencies, authorization, the masked record view (R3.1)."""

import uuid
from typing import Annotated, Literal

import pydantic_core
from fastapi import Depends, Request, Response
from sqlalchemy.engine import RowMapping

from services.registry import rules
from services.registry.config import RegistrySettings
from services.registry.roster import service as roster
from services.registry.schemas import SupervisorRead
from shared.auth import Principal, Role, ensure_district, forbidden, require
from shared.pagination import PageParams

ADMIN = Depends(require(Role.BUREAU_ADMIN))
STAFF_READ = (Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE, Role.DISTRICT_BUREAU)
StaffReader = Annotated[Principal, Depends(require(*STAFF_READ))]
Status = Literal["candidate", "active", "resigned", "dismissed", "term_ended"]
TrainingState = Literal["trained", "pending", "overdue"]


# async: FastAPI runs a plain function dependency in a worker thread (a thread hop per request)
async def settings_of(request: Request) -> RegistrySettings:
    return request.app.state.settings


SettingsDep = Annotated[RegistrySettings, Depends(settings_of)]


def authorize_record(principal: Principal, row: RowMapping) -> None:
    """Citywide roles see all; a district bureau only its district (R2.1); a supervisor only their own record."""
    if principal.has(Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE):
        return
    if principal.has(Role.DISTRICT_BUREAU):
        ensure_district(principal, row["district"])
        return
    if principal.is_self(row["id"]):
        return
    raise forbidden("仅本人或具有相应权限的用户可以访问该人民监督员的记录。")


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """A district bureau's lists are limited to its own district (asking for another is refused: R2.1)."""
    if principal.has(Role.BUREAU_ADMIN, Role.AUDITOR, Role.SERVICE):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


def to_read(row: RowMapping, *, id_number: str | None = None, phone: str | None = None) -> SupervisorRead:
    """R3.1: masked by default, and nothing beside the masked id rebuilds it: the birth date (digits 7-14) is
    shown only with the full id of an unmasked (audited) read."""
    state = rules.training_state(initial_passed=row["initial_passed_on"] is not None, status=row["status"],
                                 due=row["initial_training_due"], today=roster.today())
    hidden = ("id_number", "phone", "birth_date")
    return SupervisorRead(
        **{k: row[k] for k in SupervisorRead.model_fields if k in row and k not in hidden},
        id_number=id_number or row["id_number_masked"], phone=phone or row["phone_masked"], training_state=state,
        birth_date=rules.birth_date_of(id_number) if id_number else None,
    )


# R3.1: the personal fields a masked record read shows (logged by name, never by value)
MASKED_FIELDS = ["name", "gender", "id_number_masked", "phone_masked", "employer", "recommending_body"]


async def audit_personal_read(session, principal: Principal, supervisor_id: uuid.UUID, what: str,
                              fields: list[str]) -> None:
    """R3.1: every read of a person's data is audit-logged (who, whose, which fields; no values)."""
    await roster.audit_read(session, actor=principal.subject, action=f"supervisor.{what}", supervisor_id=supervisor_id,
                         fields=fields)



def json_page(rows: list[dict], total: int, page: PageParams) -> Response:
    """Serialize a page straight from the rows in pydantic-core (the rows come from our own SQL with the
    columns of the response model, so re-validating them would only cost time on the hot path)."""
    body = {"items": rows, "total": total, "limit": page.limit, "offset": page.offset}
    return Response(pydantic_core.to_json(body), media_type="application/json")

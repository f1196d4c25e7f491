"""Who may see and change an activity (R2.1, R3.1, R15.1), and the audit of what they did."""

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import rules
from services.casework.models import (
    activity,
    platform,
    roster,
    supervision_request,
)
from shared import audit
from shared.auth import DISTRICT_SCOPED_ROLES, Principal, Role, ensure_district, forbidden
from shared.errors import NotFound, ProblemError

PHONE_CONTEXT = "casework.roster.phone"
NONCE_CONTEXT = "casework.request.procuratorate_nonce"  # DRAW.md step 1: n_P at rest
STAFF_ROLES = (Role.PROCURATORATE, Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.AUDITOR)


async def audit_log(session: AsyncSession, *, actor: str, action: str, subject: object, **details) -> None:
    await audit.append(session, platform.audit, actor=actor, action=action, subject=str(subject), details=details)


# --- access ---------------------------------------------------------------------------------------

def ensure_office(principal: Principal, act) -> None:
    """R2.1: a procuratorate acts within its district, and within its office when the token names one."""
    ensure_district(principal, act.district)
    if principal.has(Role.PROCURATORATE) and principal.office and principal.office != act.office:
        raise ProblemError(403, "R2.1", "超出本院范围", f"该活动属于{act.office}，您所在单位为{principal.office}。")


def scoped_district(principal: Principal, district: str | None) -> str | None:
    """R2.1: the district a list is limited to: any (or none) for city-wide roles; a district bureau's or
    procuratorate's own, and asking for another is a 403 `R2.1` (as selection's work lists)."""
    if principal.is_citywide or not principal.has(*DISTRICT_SCOPED_ROLES):
        return district
    ensure_district(principal, district or principal.district)
    return principal.district


def ensure_procuratorate(principal: Principal, act) -> None:
    """Only the procuratorate of the activity's office changes it."""
    if not principal.has(Role.PROCURATORATE):
        raise forbidden("此操作仅限承办检察院。")
    ensure_office(principal, act)


def live_roster():
    """Roster rows of a request neither refused nor cancelled: a withdrawn request's supervisors take no part."""
    return exists().where(supervision_request.c.id == roster.c.request_id,
                          supervision_request.c.status.not_in(rules.CLOSED_STATUSES))


async def is_participant(session: AsyncSession, activity_id: uuid.UUID, supervisor_id: object) -> bool:
    """True if the supervisor is confirmed (not released) on the activity's live roster."""
    try:
        sid = uuid.UUID(str(supervisor_id))
    except ValueError:
        return False
    return bool(await session.scalar(select(exists().where(
        roster.c.activity_id == activity_id, roster.c.supervisor_id == sid, roster.c.status == "confirmed",
        live_roster()))))


async def ensure_reader(session: AsyncSession, principal: Principal, act) -> None:
    """Staff of the activity's district, or a supervisor confirmed on it."""
    if principal.has(*STAFF_ROLES):
        ensure_office(principal, act)
        return
    if principal.has(Role.SUPERVISOR) and await is_participant(session, act.id, principal.supervisor_id):
        return
    raise forbidden("仅承办检察院、司法行政机关或参加该活动的人民监督员可以查看。")


async def require_activity(session: AsyncSession, activity_id: uuid.UUID, *, lock: bool = False):
    stmt = select(activity).where(activity.c.id == activity_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound("办案活动", activity_id)
    return row



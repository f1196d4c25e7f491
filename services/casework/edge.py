"""The HTTP edge shared by casework's routers: roles, Idempotency-Key, settings, and the mapping of a rule's
domain error (`rules.RuleViolation`) to its problem+json answer."""

import base64
import binascii
from datetime import date
from typing import Annotated

from fastapi import Depends, Header, Request

from services.casework.access import STAFF_ROLES
from services.casework.config import CaseworkSettings
from services.casework.idempotency import HEADER, Idempotency
from services.casework.models import idempotency_key
from services.casework.rules import RuleViolation
from shared import clock
from shared.auth import Principal, Role, require
from shared.errors import Conflict, ProblemError, Unprocessable

idempotency = Idempotency(idempotency_key)

PROC = Annotated[Principal, Depends(require(Role.PROCURATORATE))]
STAFF = Annotated[Principal, Depends(require(*STAFF_ROLES))]
ANYONE = Annotated[Principal, Depends(require(*STAFF_ROLES, Role.SUPERVISOR))]
REPORT_READERS = Annotated[Principal, Depends(require(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.PROCURATORATE,
                                                      Role.AUDITOR))]
IdemKey = Annotated[str | None, Header(alias=HEADER, max_length=200, description="重试时携带相同的键")]
MATERIAL_RESPONSES = {403: {"description": "R15.1：无权查阅"}}
LEAD_TIME_RESPONSES = {422: {"description": "R10.1/R10.2/R44.1/activity_too_far：提前通知期限不符，当即拒绝；"
                                            "含 earliest_allowed_date 与 calendar_provisional"},
                       409: {"description": "request_exists：该活动已有进行中的申请"}}


def problem(v: RuleViolation) -> ProblemError:
    """The edge: a rule's refusal as the client sees it (409 when the state does not allow it, else 422)."""
    if v.kind == "conflict":
        return Conflict(v.code, v.title, v.detail, **v.extra)
    return Unprocessable(v.code, v.title, v.detail, **v.extra)


AS_OF_MIN, AS_OF_MAX = date(2000, 1, 1), date(2100, 12, 31)


def as_of_or_today(as_of: date | None) -> date:
    """A report's reference day: today (server clock, Shanghai) unless given, within 2000–2100."""
    if as_of is None:
        return clock.today()
    if not AS_OF_MIN <= as_of <= AS_OF_MAX:
        raise Unprocessable("invalid_date", "日期超出范围", "as_of 须在 2000-01-01 至 2100-12-31 之间。")
    return as_of


# async: FastAPI runs a plain function dependency in a worker thread (a thread hop per request)
async def settings_of(request: Request) -> CaseworkSettings:
    return request.app.state.settings


SettingsDep = Annotated[CaseworkSettings, Depends(settings_of)]


def b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("invalid_base64", f"{what}不是有效的 Base64", "请使用标准 Base64 编码。") from exc



"""Pure rule code of the casework service (no I/O); each function cites its RULES.md id."""

import hashlib
import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared import activity_types
from shared.calendar import WorkingCalendar
from shared.errors import Conflict, Unprocessable

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORM_TITLE = "威海市人民监督员履职情况反馈表"
REPORT_WORKING_DAYS = 3  # R20.1
TRANSMITTAL_DAY = 4  # R20.2: "每月五日前" = before the 5th, i.e. due by the 4th (calendar days)


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai date of a UTC moment (dates on the bus are Shanghai dates)."""
    return moment.astimezone(SHANGHAI).date()


def check_activity_type(activity_type: str, other_description: str | None) -> None:
    """N-ACT: the type is one of the enumeration; "other" needs a description."""
    if not activity_types.is_known(activity_type):
        raise Unprocessable("N-ACT", "活动类型无效",
                            f"依据 N-ACT，活动类型须为：{'、'.join(activity_types.ACTIVITY_TYPES)}。")
    if activity_type == activity_types.OTHER and not (other_description or "").strip():
        raise Unprocessable("N-ACT", "请说明其他办案活动的内容", "依据 N-ACT，活动类型为“其他”时须填写活动说明。")


def check_can_close(mandatory_invitation: bool, confirmed_supervisors: int) -> None:
    """N-MUST: an activity where inviting supervisors is mandatory cannot close without one."""
    if mandatory_invitation and confirmed_supervisors < 1:
        raise Conflict("N-MUST", "应当邀请人民监督员的活动不能在无人民监督员参加时办结",
                       "依据 N-MUST，该活动属于应当邀请人民监督员参加的情形，尚无确认参加的人民监督员。")


def check_not_frozen(frozen: bool) -> None:
    """R17.1: after the first signature the form content (summary, opinions) cannot change."""
    if frozen:
        raise Conflict("R17.1", "反馈表已签字，内容不得修改",
                       "依据 R17.1，人民监督员已在《威海市人民监督员履职情况反馈表》上签字，内容已固定。")


def report_due(activity_end: date, calendar: WorkingCalendar) -> tuple[date, bool]:
    """R20.1: participation reported within 3 working days after the activity ends → (due date, provisional)."""
    answer = calendar.add_working_days(activity_end, REPORT_WORKING_DAYS)
    return answer.value, answer.provisional


def previous_month(today: date) -> date:
    """First day of the month before `today`'s month."""
    return date(today.year - 1, 12, 1) if today.month == 1 else date(today.year, today.month - 1, 1)


def transmittal_due(month: date) -> date:
    """R20.2: the forms of `month` are sent before the 5th of the next month, i.e. by the 4th.

    Reading: "每月五日前" counts calendar days and is not moved for holidays (the rule names no working days);
    a transmittal on the 4th is on time, on the 5th it is late.
    """
    nxt = date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)
    return nxt.replace(day=TRANSMITTAL_DAY)


def is_overdue(due_on: date, done_on: date | None, as_of: date) -> bool:
    """A deadline is overdue when not met by `due_on` (done later, or not done and as_of is past it)."""
    if done_on is not None:
        return done_on > due_on
    return as_of > due_on


def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the exact bytes that are hashed and signed."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def form_content(*, activity: dict[str, Any], summary: str, participants: list[dict[str, Any]]) -> dict[str, Any]:
    """R17.1: the form's content: activity facts, summary, each participant's opinion verbatim + adoption status.

    `participants`: [{supervisor_id, name, opinion, adopted (True/False/None)}]; sorted by supervisor id so the
    same facts always give the same bytes.
    """
    rows = sorted(
        ({"supervisor_id": str(p["supervisor_id"]), "name": p["name"], "opinion": p["opinion"],
          "adoption": {True: "adopted", False: "not_adopted"}.get(p.get("adopted"), "pending")}
         for p in participants),
        key=lambda p: p["supervisor_id"],
    )
    return {"title": FORM_TITLE, "version": 1, "activity": activity, "summary": summary, "participants": rows}


def content_hash(content: dict[str, Any]) -> str:
    """R17.1: sha256 of the canonical content."""
    return sha256_hex(canonical(content))


def signature_hash(*, form_id: str, supervisor_id: str, content_hash: str, signed_at: datetime, method: str,
                   image_sha256: str | None) -> str:
    """R17.1: the hash of one signature: who signed which content, when, how (and which handwriting image)."""
    return sha256_hex(canonical({
        "form_id": form_id, "supervisor_id": supervisor_id, "content_hash": content_hash,
        "signed_at": signed_at.isoformat(), "method": method, "image_sha256": image_sha256,
    }))

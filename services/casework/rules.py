"""Pure rule code of the casework service (no I/O); each function cites its RULES.md id."""

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol, get_args

from shared import activity_types
from shared.calendar import WorkingCalendar
from shared.clock import SHANGHAI

FORM_TITLE = "威海市人民监督员履职情况反馈表"
REPORT_WORKING_DAYS = 3  # R20.1
TRANSMITTAL_DAY = 5  # R20.2: "每月五日前", as RULES.md reads it: due on the 5th inclusive (moved off rest days)


class RuleViolation(Exception):
    """A rule refused (domain error, no HTTP here): `code` is the rule id or a stable code, title/detail Chinese.

    `kind` says how the edge answers: "invalid" (the input can never pass: 422) or "conflict" (the state does not
    allow it now: 409); `extra` are fields of the problem answer (e.g. earliest_allowed_date).
    """

    def __init__(self, code: str, title: str, detail: str, *, kind: Literal["invalid", "conflict"] = "invalid",
                 **extra: Any) -> None:
        super().__init__(f"{code}: {title}")
        self.code = code
        self.title = title
        self.detail = detail
        self.kind = kind
        self.extra = extra


def _invalid(code: str, title: str, detail: str, **extra: Any) -> RuleViolation:
    return RuleViolation(code, title, detail, kind="invalid", **extra)


def _conflict(code: str, title: str, detail: str, **extra: Any) -> RuleViolation:
    return RuleViolation(code, title, detail, kind="conflict", **extra)

# the live state of a supervision request (DRAW.md protocol; README "Flow")
RequestStatus = Literal["requested", "awaiting_consent", "accepted", "drawn", "short", "staffed", "refused",
                        "cancelled"]
REQUEST_STATUSES: tuple[str, ...] = get_args(RequestStatus)
CLOSED_STATUSES = ("refused", "cancelled")  # a new request for the activity is allowed only after these


def check_activity_type(activity_type: str, other_description: str | None) -> None:
    """N-ACT: the type is one of the enumeration; "other" needs a description."""
    if not activity_types.is_known(activity_type):
        raise _invalid("N-ACT", "活动类型无效",
                            f"依据 N-ACT，活动类型须为：{'、'.join(activity_types.ACTIVITY_TYPES)}。")
    if activity_type == activity_types.OTHER and not (other_description or "").strip():
        raise _invalid("N-ACT", "请说明其他办案活动的内容", "依据 N-ACT，活动类型为“其他”时须填写活动说明。")


# N-MUST: the matters of a public review / public hearing for which the SPP rules make the invitation mandatory
MANDATORY_MATTERS: dict[str, str] = {
    "criminal_complaint": "不服检察机关处理决定的刑事申诉案件公开审查",
    "intended_non_prosecution": "拟不起诉案件公开审查",
    "detention_necessity": "羁押必要性审查案件公开审查",
    "high_impact_arrest_review": "有重大社会影响的审查逮捕案件公开听证",
    "administrative_litigation_supervision": "行政诉讼监督案件公开听证",
}
HEARING_MATTERS: dict[str, str] = {**MANDATORY_MATTERS, "other_hearing": "其他公开审查、公开听证"}
HearingMatter = Literal["criminal_complaint", "intended_non_prosecution", "detention_necessity",
                        "high_impact_arrest_review", "administrative_litigation_supervision", "other_hearing"]


def mandatory_invitation(activity_type: str, hearing_matter: str | None, requested: bool | None) -> bool:
    """N-MUST: the flag follows the matter where the measures name it; the office may add it, never drop it.

    `requested` is the client's flag: None = follow the matter; True = mandatory anyway; False with a named
    matter is refused (the measures make it mandatory). A matter is only for a public review / hearing.
    """
    if hearing_matter is not None and activity_type != activity_types.PUBLIC_HEARING:
        raise _invalid("N-MUST", "审查听证事项仅适用于公开听证/公开审查",
                       "依据 N-MUST，hearing_matter 只能用于活动类型 public_hearing（公开听证/公开审查）。")
    if hearing_matter is not None and hearing_matter not in HEARING_MATTERS:
        raise _invalid("N-MUST", "审查听证事项无效", f"依据 N-MUST，事项须为：{'、'.join(HEARING_MATTERS)}。")
    named = hearing_matter in MANDATORY_MATTERS
    if named and requested is False:
        raise _invalid("N-MUST", "该活动应当邀请人民监督员",
                       f"依据 N-MUST，“{MANDATORY_MATTERS[hearing_matter or '']}”应当邀请人民监督员参加，"
                       "mandatory_invitation 不能为 false。")
    return named or bool(requested)


def check_can_close(mandatory_invitation: bool, confirmed_supervisors: int) -> None:
    """N-MUST: an activity where inviting supervisors is mandatory cannot close (be held, be reported as
    done) without a confirmed supervisor."""
    if mandatory_invitation and confirmed_supervisors < 1:
        raise _conflict("N-MUST", "应当邀请人民监督员的活动不能在无人民监督员参加时办结",
                        "依据 N-MUST，该活动属于应当邀请人民监督员参加的情形，尚无确认参加的人民监督员。")


def check_started(starts_at: datetime, at: datetime, *, code: str) -> None:
    """R17.1 (signed on site) and holding: only once the activity has begun on the server's clock."""
    if at < starts_at:
        what = "签字确认" if code == "R17.1" else "登记活动已举行"
        raise _conflict(code, "活动尚未开始", f"依据 {code}，活动开始后方可{what}（活动开始时间："
                        f"{starts_at.astimezone(SHANGHAI):%Y年%m月%d日 %H:%M}）。")


def check_activity_open(status: str) -> None:
    """An activity held or cancelled takes no new request, reschedule or cancellation."""
    if status == "held":
        raise _conflict("activity_held", "活动已办结", "已办结的活动不能再变更。")
    if status == "cancelled":
        raise _conflict("activity_cancelled", "活动已取消", "已取消的活动不能再变更。")


def check_activity_changeable(status: str, *, form_exists: bool) -> None:
    """Cancel / reschedule: only an open activity nobody signed for yet (it did not take place)."""
    check_activity_open(status)
    if form_exists:
        raise _conflict("R17.1", "反馈表已有签字，活动已举行",
                        "依据 R17.1，人民监督员已在反馈表上签字，该活动已举行，不能取消或改期。")


def check_window(starts_at: datetime, ends_at: datetime) -> None:
    """An activity ends after it starts."""
    if ends_at <= starts_at:
        raise _invalid("invalid_window", "活动时间无效", "结束时间须晚于开始时间。")


# --- opinions (R16.1) ---------------------------------------------------------------------------------

OpinionSource = Literal["supervisor", "procuratorate_record"]


def check_opinion_text(text: str) -> None:
    """R16.1: an opinion has words (kept verbatim: nothing is trimmed, only a blank one is refused)."""
    if not text.strip():
        raise _invalid("R16.1", "监督意见不能为空", "依据 R16.1，请填写监督意见原文。")


def check_opinion_write(source: OpinionSource, *, supervisor_wrote: bool) -> None:
    """R16.1: the supervisor's own words are never overwritten by the procuratorate's record.

    The supervisor may revise their own opinion until the form is signed (each version kept); the procuratorate
    may record an oral opinion only while the supervisor has written none.
    """
    if source == "procuratorate_record" and supervisor_wrote:
        raise _conflict("R16.1", "不得改写人民监督员本人书写的意见",
                        "依据 R16.1，该人民监督员已本人书写监督意见，检察院只能如实记录，不能覆盖；"
                        "如需修改，应由人民监督员本人提交。")


# --- supervision requests: lead time (R10.1, R10.2, R44.1) and the draw protocol (DRAW.md, R11.1) -----

class LeadTimeAnswer(Protocol):
    """What `shared.lead_time.check_lead_time` answers (LeadTimeDecision)."""

    ok: bool
    needs_consent: bool
    code: str | None
    earliest_allowed_date: date | None
    provisional: bool
    detail: str


LEAD_TIME_TITLES = {
    "R10.1": "提前通知不足五个工作日",
    "R10.2": "提前通知不足三个工作日",
    "R44.1": "活动日期早于《实施办法》施行日期",
    "activity_too_far": "活动日期过远",
}


def check_lead_time_answer(decision: LeadTimeAnswer) -> str:
    """R10.1/R10.2/R44.1: refuse at once (422, earliest allowed date) or give the status the request starts in."""
    if not decision.ok:
        code = decision.code or "R10.1"
        earliest = decision.earliest_allowed_date
        raise _invalid(code, LEAD_TIME_TITLES.get(code, "不符合提前通知的要求"), decision.detail,
                            earliest_allowed_date=earliest.isoformat() if earliest else None,
                            calendar_provisional=bool(decision.provisional))
    return "awaiting_consent" if decision.needs_consent else "requested"


def commitment(nonce_hex: str) -> str:
    """DRAW.md protocol step 1: the commitment to a nonce is sha256 of its raw bytes, lowercase hex."""
    return hashlib.sha256(bytes.fromhex(nonce_hex)).hexdigest()


def check_cancellable(status: str, *, activity_status: str, starts_at: datetime, at: datetime) -> None:
    """A request can be withdrawn while it is neither refused nor cancelled and the activity has not begun."""
    if status in CLOSED_STATUSES:
        raise _conflict("request_closed", "该申请已被拒绝或已撤回", "已被拒绝或已撤回的申请不能再撤回。")
    if activity_status == "held" or at >= starts_at:
        raise _conflict("activity_started", "活动已开始，不能撤回申请", "只能在活动开始前撤回监督申请。")


def status_after_drawn(status: str) -> str:
    """SupervisorDrawn: a confirmed supervisor makes an accepted request `drawn` (`short` stays short)."""
    return "drawn" if status in ("requested", "awaiting_consent", "accepted") else status


def status_after_draw_completed(status: str, shortfall: Mapping[str, int]) -> str:
    """DrawCompleted: `drawn`, or `short` when a group could not be filled; staffed/closed requests keep theirs."""
    if status in ("staffed", *CLOSED_STATUSES):
        return status
    return "short" if any(n > 0 for n in shortfall.values()) else "drawn"


def status_after_staffed(status: str) -> str:
    """SupervisionStaffed: every seat confirmed (a closed request stays closed)."""
    return status if status in CLOSED_STATUSES else "staffed"


def status_after_released(status: str) -> str:
    """SupervisorReleased: a staffed request has a seat open again."""
    return "drawn" if status == "staffed" else status


def status_after_refused(status: str) -> str:
    """SupervisionRequestRefused: the bureau refused (a request the procuratorate withdrew stays withdrawn)."""
    return status if status == "cancelled" else "refused"


@dataclass(frozen=True)
class ExpectedReceipt:
    """What casework knows of one draw round before it reads the receipt (DRAW.md protocol step 5)."""

    request_id: str
    round: int
    receipt_hash: str  # from DrawCompleted
    bureau_commitment: str | None  # from SupervisionAccepted
    procuratorate_commitment: str | None  # ours, sent with the request
    procuratorate_nonce: str | None  # ours, or None while we have not revealed it
    snapshot_hash: str | None  # from SupervisionAccepted
    params_hash: str | None  # from SupervisionAccepted
    beacon: Mapping[str, Any] | None = None  # from SupervisionAccepted: {source, round}, named before its value


def _same_beacon(found: Any, named: Mapping[str, Any] | None) -> bool:
    """The beacon used is the one the acceptance named (source and round), with a value; none if none was named."""
    if named is None:
        return found is None
    return (isinstance(found, Mapping) and found.get("source") == named.get("source")
            and found.get("round") == named.get("round") and found.get("value") not in (None, ""))


_MISSING = object()


def _at(receipt: Any, *path: str) -> Any:
    value = receipt
    for key in path:
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(key, _MISSING)
    return value


def _commits_to(nonce: Any, expected: str | None) -> bool:
    try:
        return expected is not None and isinstance(nonce, str) and commitment(nonce) == expected
    except ValueError:
        return False


def check_receipt(receipt: Any, *, expected: ExpectedReceipt,
                  verify: Callable[[Any], Mapping[str, Any]]) -> list[str]:
    """DRAW.md protocol step 5, R11.1: the names of the checks a draw receipt fails ([] = it is the agreed draw).

    `verify` is the stand-alone verifier (`services.selection.draw.algorithm.verify_receipt`): it recomputes
    the receipt from itself; the other checks bind it to what casework received before the draw (round 1 also
    to the acceptance's snapshot, params and beacon: later rounds exclude everyone tried).
    """
    try:
        verified = bool(verify(receipt).get("ok"))
    except Exception:  # a verifier that cannot read the receipt has not verified it
        verified = False
    bureau = _at(receipt, "commitments", "bureau")
    checks = {
        "receipt_verifies": verified,
        "receipt_hash": _at(receipt, "receipt_hash") == expected.receipt_hash,
        "request": _at(receipt, "request_id") == expected.request_id,
        "bureau_commitment": (expected.bureau_commitment is not None and bureau == expected.bureau_commitment
                              and _commits_to(_at(receipt, "nonces", "bureau"), expected.bureau_commitment)),
        "procuratorate_commitment": _at(receipt, "commitments", "procuratorate") == expected.procuratorate_commitment,
        "procuratorate_nonce_in_seed": _at(receipt, "nonces", "procuratorate") == expected.procuratorate_nonce,
    }
    if expected.round == 1:  # later rounds exclude everyone tried: a new snapshot and params
        checks["snapshot_hash"] = (expected.snapshot_hash is not None
                                   and _at(receipt, "snapshot_hash") == expected.snapshot_hash)
        checks["params_hash"] = expected.params_hash is not None and _at(receipt, "params_hash") == expected.params_hash
        checks["beacon"] = _same_beacon(_at(receipt, "beacon"), expected.beacon)
    return [name for name, ok in checks.items() if not ok]


RECEIPT_RETRY_FIRST_SECONDS = 5.0
RECEIPT_RETRY_MAX_SECONDS = 600.0


def receipt_retry_seconds(attempts: int) -> float:
    """DRAW.md protocol step 5: selection unreachable → try again later (5 s, 10 s, … at most 10 min)."""
    return min(RECEIPT_RETRY_MAX_SECONDS, RECEIPT_RETRY_FIRST_SECONDS * 2 ** max(0, min(attempts - 1, 16)))


def check_not_frozen(frozen: bool) -> None:
    """R17.1: after the first signature the form content (summary, opinions) cannot change."""
    if frozen:
        raise _conflict("R17.1", "反馈表已签字，内容不得修改",
                       "依据 R17.1，人民监督员已在《威海市人民监督员履职情况反馈表》上签字，内容已固定。")


def report_due(activity_end: date, calendar: WorkingCalendar) -> tuple[date, bool]:
    """R20.1: participation reported within 3 working days after the activity ends → (due date, provisional)."""
    answer = calendar.add_working_days(activity_end, REPORT_WORKING_DAYS)
    return answer.value, answer.provisional


def report_overdue_cutoff(as_of: date, calendar: WorkingCalendar) -> date:
    """R20.1: the latest activity end date whose report is overdue on `as_of` (its due date is before `as_of`).

    The due date never decreases with the end date and is at least 3 days after it, so every activity that ended
    on or before the cutoff is overdue unless reported, and none after it: the query filters on the end date.
    """
    day = as_of - timedelta(days=REPORT_WORKING_DAYS + 1)
    while report_due(day, calendar)[0] >= as_of:
        day -= timedelta(days=1)
    return day


def previous_month(today: date) -> date:
    """First day of the month before `today`'s month."""
    return date(today.year - 1, 12, 1) if today.month == 1 else date(today.year, today.month - 1, 1)


def next_month(month: date) -> date:
    """First day of the month after `month`'s."""
    return date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)


def month_of(day: date) -> date:
    return day.replace(day=1)


def transmittal_due(month: date, calendar: WorkingCalendar) -> tuple[date, bool]:
    """R20.2: the forms of `month` are due on the 5th of the next month inclusive, moved to the next working day
    when the 5th is a rest day or holiday (Civil Code art. 203) → (due date, provisional).

    E.g. September 2026 → 2026-10-05 is in the National Day holiday → due 2026-10-08.
    """
    answer = calendar.add_working_days(next_month(month).replace(day=TRANSMITTAL_DAY), 0)
    return answer.value, answer.provisional


def transmittal_period(activity_on: date, signed_on: date, sent_months: set[date]) -> date:
    """R20.2: the month whose transmittal a signature still owed belongs to.

    A form signed in the month of its activity belongs to that month; one signed later, after that month's
    transmittal was sent, goes in the next one not yet sent (at the earliest the month before the signature:
    that month's transmittal is due in the signature's month).
    """
    month = max(month_of(activity_on), previous_month(signed_on))
    while month in sent_months:
        month = next_month(month)
    return month


def materials_due(starts_at: datetime) -> date:
    """R15.1: the case department provides the materials beforehand: due on the activity's day (Shanghai)."""
    return starts_at.astimezone(SHANGHAI).date()


def signature_due(ends_at: datetime) -> date:
    """R17.1: the form is signed on site: due on the day the activity ends (Shanghai)."""
    return ends_at.astimezone(SHANGHAI).date()


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


ADOPTION = {True: "adopted", False: "not_adopted"}


def form_content(*, activity: dict[str, Any], summary: str, participants: list[dict[str, Any]]) -> dict[str, Any]:
    """R17.1: the form's content: activity facts, summary, each participant's opinion verbatim (and who wrote it
    down, R16.1) + adoption status at signing.

    `participants`: [{supervisor_id, name, opinion, opinion_source, adopted (True/False/None)}]; sorted by
    supervisor id so the same facts always give the same bytes. Version 2 adds `opinion_source`.
    """
    rows = sorted(
        ({"supervisor_id": str(p["supervisor_id"]), "name": p["name"], "opinion": p["opinion"],
          "opinion_source": p.get("opinion_source"), "adoption": ADOPTION.get(p.get("adopted"), "pending")}
         for p in participants),
        key=lambda p: p["supervisor_id"],
    )
    return {"title": FORM_TITLE, "version": 2, "activity": activity, "summary": summary, "participants": rows}


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

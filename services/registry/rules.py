"""Pure rules of the roster (RULES.md R4–R9, R22–R24, N-TERM, N-EXCL, N-BAN): no I/O here."""

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum, StrEnum


class RuleViolation(Exception):
    """A rule refused the input: `code` is the rule id or a stable error code, `detail` is Chinese."""

    def __init__(self, code: str, title: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.title = title
        self.detail = detail


# --- personal data -------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"[1-9][0-9]{16}[0-9X]")


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str) -> str:
    """The form stored, hashed and compared: stripped, upper-case X."""
    return value.strip().upper()


def check_id_number(value: str, *, today: date | None = None) -> str:
    """Validate an 18-digit resident id (GB 11643): format, birth date, check digit; returns it normalized."""
    text = normalize_id_number(value)
    bad = lambda detail: RuleViolation("invalid_id_number", "公民身份号码无效", detail)  # noqa: E731
    if len(text) != 18:
        raise bad(f"公民身份号码应为18位，实际为{len(text)}位。")
    if not _ID_RE.fullmatch(text):
        raise bad("公民身份号码前17位应为数字，最后一位为数字或X。")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError as exc:
        raise bad("公民身份号码中的出生日期不存在。") from exc
    if born.year < 1900 or born > (today or date.today()):
        raise bad("公民身份号码中的出生日期不在有效范围内。")
    if id_check_digit(text[:17]) != text[17]:
        raise bad("公民身份号码校验码错误，请核对后重新输入。")
    return text


def birth_date_of(id_number: str) -> date:
    """Birth date encoded in a (valid) id number."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def gender_of(id_number: str) -> str:
    """'male' if the 17th digit is odd, else 'female' (GB 11643)."""
    return "male" if int(id_number[16]) % 2 else "female"


_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")


def check_mobile(value: str) -> str:
    """A mainland mobile number (11 digits, 13x–19x); '+86', spaces and dashes are dropped."""
    text = re.sub(r"[\s-]", "", value or "")
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    if not _MOBILE_RE.fullmatch(text):
        raise RuleViolation("invalid_phone", "手机号码无效", "请输入11位中国大陆手机号码（如 13812345678）。")
    return text


# --- dates ---------------------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_years(day: date, years: int) -> date:
    """Same day `years` later (Feb 29 → Feb 28 in a common year)."""
    return add_months(day, 12 * years)


TERM_YEARS = 5


def term_end(start: date) -> date:
    """R4.1 / N-TERM: a term is 5 years, so it ends the day before the 5th anniversary of its start."""
    return add_years(start, TERM_YEARS) - timedelta(days=1)


def is_late_report(changed_on: date, reported_on: date) -> bool:
    """R6.1: a change must be reported within one calendar month; later reports are flagged."""
    return reported_on > add_months(changed_on, 1)


# --- appointment: N-TERM and N-BAN ---------------------------------------------------------------

MAX_CONSECUTIVE_TERMS = 2
CONSECUTIVE_GAP_YEARS = 1


@dataclass(frozen=True)
class Term:
    start: date
    end: date


def consecutive_terms_before(history: list[Term], new_start: date) -> int:
    """How many terms in an unbroken chain end right before `new_start` (gap ≤ 1 year counts as unbroken)."""
    chain = 0
    cursor = new_start
    for term in sorted(history, key=lambda t: t.start, reverse=True):
        if term.start >= cursor:
            continue  # a term starting at or after the new one is not "before" it
        if cursor > add_years(term.end, CONSECUTIVE_GAP_YEARS):
            break
        chain += 1
        cursor = term.start
    return chain


def check_term_limit(history: list[Term], new_start: date) -> None:
    """N-TERM: at most 2 consecutive terms; a third consecutive appointment is refused."""
    if consecutive_terms_before(history, new_start) >= MAX_CONSECUTIVE_TERMS:
        raise RuleViolation(
            "N-TERM", "超过连任限制",
            f"依据 N-TERM，人民监督员连续任职不得超过{MAX_CONSECUTIVE_TERMS}届，不能再次连续任命。",
        )


def check_not_banned(banned: bool) -> None:
    """N-BAN: a person dismissed for violations or an unqualified annual appraisal is never selected again."""
    if banned:
        raise RuleViolation("N-BAN", "永久不得选任",
                            "依据 N-BAN，该人员曾因违法违纪或年度考核不合格被免除资格，不得再次选任。")


# --- statuses and transitions --------------------------------------------------------------------

class Status(StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RESIGNED = "resigned"
    DISMISSED = "dismissed"
    TERM_ENDED = "term_ended"


STATUS_ZH = {"candidate": "候选", "active": "在任", "resigned": "已辞去", "dismissed": "已免除",
             "term_ended": "任期届满"}

APPOINTABLE = frozenset({Status.CANDIDATE, Status.ACTIVE, Status.TERM_ENDED})


def check_transition(action: str, status: str, allowed: frozenset[Status] | set[Status]) -> None:
    """Refuse an out-of-order state change with 409 `invalid_transition`."""
    if status not in allowed:
        raise RuleViolation(
            "invalid_transition", "当前状态不允许此操作",
            f"人民监督员当前状态为“{STATUS_ZH.get(status, status)}”，不能{action}。",
        )


# --- dismissal: R8.1, R9.1, N-BAN ----------------------------------------------------------------

class DismissalGround(IntEnum):
    """R8.1: the six grounds on which the bureau dismisses (免除资格)."""

    RESIGNATION = 1
    LOST_NATIONALITY = 2
    LOST_LEGAL_CAPACITY = 3
    SELECTION_FRAUD = 4
    ANNUAL_UNQUALIFIED = 5
    EXCLUSION_CIRCUMSTANCES = 6

    @property
    def label(self) -> str:
        return GROUND_LABELS[self]


GROUND_LABELS = {
    DismissalGround.RESIGNATION: "本人申请辞去人民监督员职务",
    DismissalGround.LOST_NATIONALITY: "丧失中华人民共和国国籍",
    DismissalGround.LOST_LEGAL_CAPACITY: "丧失民事行为能力",
    DismissalGround.SELECTION_FRAUD: "在选任中弄虚作假，提供不实材料",
    DismissalGround.ANNUAL_UNQUALIFIED: "年度考核不合格",
    DismissalGround.EXCLUSION_CIRCUMSTANCES: "具有《人民监督员选任管理办法》第七条第二款、第十条第一款规定情形",
}


def bans_permanently(ground: DismissalGround | int) -> bool:
    """N-BAN: dismissal for violations in selection (4: fraud) or service (6: N-EXCL circumstances),
    or for an unqualified annual appraisal (5), means never selected again; 1–3 are no fault of conduct."""
    return DismissalGround(ground) in {
        DismissalGround.SELECTION_FRAUD, DismissalGround.ANNUAL_UNQUALIFIED,
        DismissalGround.EXCLUSION_CIRCUMSTANCES,
    }


class ExclusionGround(StrEnum):
    """N-EXCL: circumstances that make a person ineligible (national selection measures Art. 10 §1)."""

    CRIMINAL_PENALTY = "criminal_penalty"
    EXPELLED_FROM_PUBLIC_OFFICE = "expelled_from_public_office"
    LICENCE_REVOKED = "licence_revoked"
    DISHONEST_DEBTOR = "dishonest_debtor"
    ASSESSOR_REMOVED = "assessor_removed"
    OTHER_SERIOUS_VIOLATION = "other_serious_violation"


@dataclass(frozen=True)
class Notice:
    recipient_kind: str  # person / employer / recommending_body / procuratorate
    recipient: str
    text: str


@dataclass(frozen=True)
class DismissalDocuments:
    notices: list[Notice]
    announcement: str


def dismissal_documents(
    *, name: str, employer: str, recommending_body: str, procuratorate: str, bureau: str,
    ground: DismissalGround | int, decided_on: date, certificate_no: str | None, work_card_no: str | None,
) -> DismissalDocuments:
    """R9.1: written notices to the person, employer, recommending body and procuratorate, and a public text."""
    g = DismissalGround(ground)
    when = f"{decided_on.year}年{decided_on.month}月{decided_on.day}日"
    fact = f"{name}同志因{g.label}（依据《威海市人民监督员管理办法》第八条第（{g.value}）项），经{bureau}决定，" \
           f"自{when}起免除其人民监督员资格"
    recall = f"，收回其人民监督员证书（{certificate_no or '无'}）及工作证（{work_card_no or '无'}）。"
    notices = [
        Notice("person", name, f"{name}同志：\n    {fact}{recall}\n特此通知。\n{bureau}\n{when}"),
        Notice("employer", employer, f"{employer}：\n    贵单位{fact}。\n特此通知。\n{bureau}\n{when}"),
        Notice("recommending_body", recommending_body,
               f"{recommending_body}：\n    经贵单位推荐的人民监督员{fact}。\n特此通知。\n{bureau}\n{when}"),
        Notice("procuratorate", procuratorate,
               f"{procuratorate}：\n    {fact}，自即日起不再参加人民监督员监督活动的抽选。"
               f"\n特此函告。\n{bureau}\n{when}"),
    ]
    announcement = f"关于免除{name}人民监督员资格的公告\n    {fact}。\n特此公告。\n{bureau}\n{when}"
    return DismissalDocuments(notices, announcement)


# --- training and eligibility: R22.1–R22.3, R23.1, R24.1 -----------------------------------------

class TrainingKind(StrEnum):
    INITIAL = "initial"
    ANNUAL = "annual"
    MAKEUP = "makeup"


class TrainingFormat(StrEnum):
    """R24.1: the training formats."""

    LECTURE = "lecture"  # 集中授课
    SEMINAR = "seminar"  # 座谈研讨
    OBSERVATION = "observation"  # 现场观摩
    CASE_TEACHING = "case_teaching"  # 案例教学
    FIELD_STUDY = "field_study"  # 实地考察学习
    ONLINE = "online"  # 网络学习


FORMAT_ZH = {"lecture": "集中授课", "seminar": "座谈研讨", "observation": "现场观摩",
             "case_teaching": "案例教学", "field_study": "实地考察学习", "online": "网络学习"}

INITIAL_TRAINING_MONTHS = 2


def initial_training_due(decision_date: date) -> date:
    """R22.1: initial training (and its exam) within two months of the appointment decision."""
    return add_months(decision_date, INITIAL_TRAINING_MONTHS)


def initial_training_overdue(decision_date: date, passed: bool, today: date) -> bool:
    """R22.1: overdue when the exam is not passed and the two months have run out."""
    return not passed and today > initial_training_due(decision_date)


@dataclass(frozen=True)
class Attempt:
    kind: str
    attended: bool
    exam_passed: bool | None


def needs_makeup(attempts: list[Attempt]) -> bool:
    """R22.2: a missed or failed initial (or make-up) attempt, and no pass yet → a make-up is needed."""
    qualifying = [a for a in attempts if a.kind in (TrainingKind.INITIAL, TrainingKind.MAKEUP)]
    if any(a.attended and a.exam_passed for a in qualifying):
        return False
    return any(not a.attended or a.exam_passed is False for a in qualifying)


def check_attempt_kind(kind: str, attempts: list[Attempt]) -> None:
    """R22.2: after a missed or failed initial training the next attempt must be a make-up, not another initial."""
    if kind == TrainingKind.INITIAL and needs_makeup(attempts):
        raise RuleViolation("R22.2", "应参加补训",
                            "依据规则 R22.2，该人民监督员初任培训缺席或考试未通过，"
                            "应安排补训及补考，不能再次记录初任培训。")


def passes_initial(kind: str, attended: bool, exam_passed: bool | None) -> bool:
    """R22.3: only an attended initial or make-up course with a passed exam qualifies."""
    return kind in (TrainingKind.INITIAL, TrainingKind.MAKEUP) and attended and bool(exam_passed)


# Internal reasons; `event_reasons` maps them onto the EligibilityChanged contract.
REASON_ZH = {
    "not_appointed": "尚未任命", "initial_training_pending": "未通过初任培训考试", "dismissed": "已被免除资格",
    "resigned": "已辞去职务", "term_ended": "任期已届满", "excluded": "具有不得担任的情形",
}


def eligibility(
    *, status: str, initial_passed: bool, term_end_on: date | None, excluded: bool, today: date,
) -> tuple[bool, list[str]]:
    """R22.3: eligible = appointed and active, term not ended, initial exam passed, no N-EXCL exclusion."""
    reasons: list[str] = []
    if status == Status.CANDIDATE:
        reasons.append("not_appointed")
    elif status == Status.DISMISSED:
        reasons.append("dismissed")
    elif status == Status.RESIGNED:
        reasons.append("resigned")
    elif status == Status.TERM_ENDED or (term_end_on is not None and today > term_end_on):
        reasons.append("term_ended")
    if status != Status.CANDIDATE and not initial_passed and status == Status.ACTIVE:
        reasons.append("initial_training_pending")
    if excluded:
        reasons.append("excluded")
    return (not reasons, reasons)


def event_reasons(reasons: list[str]) -> list[str]:
    """Reasons in the EligibilityChanged vocabulary (no 'excluded'/'not_appointed' there yet: → 'suspended')."""
    out: list[str] = []
    for r in reasons:
        mapped = "suspended" if r in ("excluded", "not_appointed") else r
        if mapped not in out:
            out.append(mapped)
    return out


def training_state(*, initial_passed: bool, status: str, due: date | None, today: date) -> str:
    """'trained', 'overdue' (R22.1) or 'pending'."""
    if initial_passed:
        return "trained"
    if status == Status.ACTIVE and due is not None and today > due:
        return "overdue"
    return "pending"


def format_number(prefix: str, year: int, seq: int, *, style: str) -> str:
    """R5.1: certificate `威监证〔2025〕0001`, work card `WH-GZ-2025-0001`."""
    if style == "certificate":
        return f"{prefix}〔{year}〕{seq:04d}"
    return f"{prefix}-{year}-{seq:04d}"

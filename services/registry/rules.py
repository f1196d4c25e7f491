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


def check_district(district: str, districts: list[str] | tuple[str, ...]) -> str:
    """A district of Weihai (the configured list)."""
    if district not in districts:
        raise RuleViolation("unknown_district", "辖区不存在",
                            f"“{district}”不是威海市的辖区，可选：{'、'.join(districts)}。")
    return district


def check_specialties(names: list[str] | tuple[str, ...], known: set[str] | frozenset[str]) -> list[str]:
    """Specialties must be on the managed list and active (`known`); order kept, duplicates dropped."""
    wanted = list(dict.fromkeys(n.strip() for n in names))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise RuleViolation("unknown_specialty", "专业领域不在目录中",
                            f"以下专业领域不在目录中或已停用：{'、'.join(unknown)}。")
    return wanted


@dataclass(frozen=True)
class Candidate:
    """A person's record as checked (R3.1: the caller encrypts, hashes and masks id number and phone)."""

    id_number: str
    phone: str
    gender: str
    district: str
    specialties: list[str]


def check_candidate(*, id_number: str, phone: str, district: str, specialties: list[str],
                    gender: str | None = None, birth_date: date | None = None, today: date,
                    districts: list[str] | tuple[str, ...], known_specialties: set[str] | frozenset[str],
                    ) -> Candidate:
    """Every check of a new person's record, in the order a clerk reads the form: id number (GB 11643), mobile,
    the birth date and gender given beside it (must match the id), district, specialties. One door: the single
    registration (`POST /supervisors`) and the bulk import run this same function per person."""
    number = check_id_number(id_number, today=today)
    mobile = check_mobile(phone)
    if birth_date is not None and birth_date != birth_date_of(number):
        raise RuleViolation("id_number_mismatch", "出生日期与身份号码不符",
                            "出生日期与公民身份号码中的出生日期不一致。")
    if gender is not None and gender != gender_of(number):
        raise RuleViolation("id_number_mismatch", "性别与身份号码不符", "性别与公民身份号码的性别码不一致。")
    return Candidate(number, mobile, gender_of(number), check_district(district, districts),
                     check_specialties(specialties, known_specialties))


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


def check_reported_on(claimed: date | None, server_today: date) -> None:
    """R6.1: `reported_on` is the server's date of receipt; a client cannot back-date (or post-date) a report."""
    if claimed is not None and claimed != server_today:
        raise RuleViolation("R6.1", "报告日期由系统记录",
                            f"依据规则 R6.1，报告日期为系统收到报告之日（{server_today.isoformat()}），"
                            f"不能填写为{claimed.isoformat()}。")


# --- appointment: N-TERM and N-BAN ---------------------------------------------------------------

MAX_CONSECUTIVE_TERMS = 2
# N-TERM: "连续担任人民监督员不超过两届". No text we hold says a gap still counts as consecutive, so by
# default only a term that starts the day after the previous one ended continues the chain; the bureau may
# configure a tolerance (RegistrySettings.n_term_gap_days) once the official reading is confirmed.
DEFAULT_GAP_DAYS = 0
LEVELS = ("provincial", "city")  # N-TERM: the procuratorate level a person serves (one only)
LEVEL_ZH = {"provincial": "省级人民检察院", "city": "设区的市级人民检察院"}


@dataclass(frozen=True)
class Term:
    """One appointment of a person: start, effective end (early end by resignation/dismissal), level."""

    start: date
    end: date
    level: str = "city"


def consecutive_terms_before(history: list[Term], new_start: date, *, gap_days: int = DEFAULT_GAP_DAYS) -> int:
    """How many terms in an unbroken chain end right before `new_start` (N-TERM).

    A term continues the chain when the next one starts no later than `gap_days` after the day following
    its end (default 0: the very next day).
    """
    chain = 0
    cursor = new_start
    for term in sorted(history, key=lambda t: t.start, reverse=True):
        if term.start >= cursor:
            continue  # a term starting at or after the new one is not "before" it
        if cursor > term.end + timedelta(days=1 + gap_days):
            break
        chain += 1
        cursor = term.start
    return chain


def check_term_limit(history: list[Term], new_start: date, *, gap_days: int = DEFAULT_GAP_DAYS) -> None:
    """N-TERM: at most 2 consecutive terms; a third consecutive appointment is refused."""
    if consecutive_terms_before(history, new_start, gap_days=gap_days) >= MAX_CONSECUTIVE_TERMS:
        raise RuleViolation(
            "N-TERM", "超过连任限制",
            f"依据 N-TERM，人民监督员连续任职不得超过{MAX_CONSECUTIVE_TERMS}届，不能再次连续任命。",
        )


def check_new_term_start(history: list[Term], new_start: date) -> None:
    """A new term starts after the person's previous term ended (at its end date or its early end)."""
    if history:
        last_end = max(t.end for t in history)
        if new_start <= last_end:
            raise RuleViolation("invalid_transition", "上一任期未结束",
                                f"该人员上一任期至{last_end.isoformat()}结束，新任期须在此之后开始。")


def check_one_level(history: list[Term], level: str, new_start: date, new_end: date) -> None:
    """N-TERM: one person serves one procuratorate level only: no term overlapping one at another level."""
    for t in history:
        if t.level != level and t.start <= new_end and new_start <= t.end:
            raise RuleViolation(
                "N-TERM", "只能担任一个层级的人民监督员",
                f"依据 N-TERM，同一人只能担任一个检察院层级的人民监督员；该人员在{t.start.isoformat()}至"
                f"{t.end.isoformat()}已担任{LEVEL_ZH.get(t.level, t.level)}人民监督员。")


def check_not_banned(banned: bool) -> None:
    """N-BAN: a person dismissed for violations or an unqualified annual appraisal is never selected again."""
    if banned:
        raise RuleViolation("N-BAN", "永久不得选任",
                            "依据 N-BAN，该人员曾因违法违纪或年度考核不合格被免除资格，不得再次选任。")


def check_number_unused(kind: str, given: str, used: bool) -> None:
    """R5.1: a certificate or work card number typed by hand must not be one already issued."""
    if used:
        what = "证书编号" if kind == "certificate" else "工作证编号"
        raise RuleViolation(f"duplicate_{'certificate' if kind == 'certificate' else 'work_card'}_no",
                            f"{what}已被使用", f"依据规则 R5.1，{what}“{given}”已发放给他人，不能重复。")


# --- statuses and transitions --------------------------------------------------------------------

class Status(StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RESIGNED = "resigned"
    DISMISSED = "dismissed"
    TERM_ENDED = "term_ended"


STATUS_ZH = {"candidate": "候选", "active": "在任", "resigned": "已辞去", "dismissed": "已免除",
             "term_ended": "任期届满"}

# N-BAN: only the permanent grounds (4-6) ban for life (the `ban` table, checked first); a person who resigned
# or was dismissed on grounds 2-3 may be appointed again when a later selection chooses them.
APPOINTABLE = frozenset(Status)


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
    # the wording of Art. 8 of the measures
    DismissalGround.RESIGNATION: "本人申请辞去担任的人民监督员",
    DismissalGround.LOST_NATIONALITY: "丧失中华人民共和国国籍",
    DismissalGround.LOST_LEGAL_CAPACITY: "丧失行为能力",
    DismissalGround.SELECTION_FRAUD: "在选任中弄虚作假，提供不实材料",
    DismissalGround.ANNUAL_UNQUALIFIED: "年度考核不合格",
    DismissalGround.EXCLUSION_CIRCUMSTANCES: "有《人民监督员选任管理办法》第七条第二款、第十条第一款所列情形",
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


EXCLUSION_ZH = {
    "criminal_penalty": "受过刑事处罚", "expelled_from_public_office": "被开除公职",
    "licence_revoked": "被吊销律师、公证员执业证书或者被仲裁委员会除名",
    "dishonest_debtor": "被纳入失信被执行人名单", "assessor_removed": "因违法违纪被免除人民陪审员职务",
    "other_serious_violation": "有其他严重违法违纪行为，可能影响司法公正",
}


def check_not_excluded(excluded_ground: str | None) -> None:
    """N-EXCL: a person with a recorded (not lifted) exclusion ground cannot be appointed."""
    if excluded_ground is not None:
        raise RuleViolation(
            "N-EXCL", "具有不得担任人民监督员的情形",
            f"依据 N-EXCL，该人员已记录不得担任人民监督员的情形（{EXCLUSION_ZH.get(excluded_ground, excluded_ground)}）"
            "，"
            "不能任命；该记录经解除后方可任命。")


def check_appointment(*, history: list[Term], status: str, banned: bool, excluded_ground: str | None,
                      start: date, level: str, gap_days: int = DEFAULT_GAP_DAYS) -> date:
    """Every rule of one appointment, in order: N-BAN, N-EXCL, the status, N-TERM's one level, the new term after
    the previous one, N-TERM's two consecutive terms; returns the term's end (R4.1). One door: the single
    appointment (`POST /supervisors/{id}/appointments`) and the bulk import run this same function per person."""
    end = term_end(start)
    check_not_banned(banned)
    check_not_excluded(excluded_ground)
    check_transition("任命", status, APPOINTABLE)
    check_one_level(history, level, start, end)
    check_new_term_start(history, start)
    check_term_limit(history, start, gap_days=gap_days)
    return end


@dataclass(frozen=True)
class AppraisalResult:
    """An AppraisalFinalized result the registry received (appraisal.results)."""

    kind: str
    grade: str
    period: str


def check_ground_basis(ground: DismissalGround | int, *, appraisal_round_id: object | None,
                       result: AppraisalResult | None) -> None:
    """R8.1(5): "年度考核不合格" only on the AppraisalFinalized result it rests on (annual, unqualified)."""
    if DismissalGround(ground) != DismissalGround.ANNUAL_UNQUALIFIED:
        if appraisal_round_id is not None:
            raise RuleViolation("R8.1", "考核轮次仅适用于第（五）项",
                                "依据规则 R8.1，只有以第（五）项“年度考核不合格”免除资格时才引用考核轮次。")
        return
    if appraisal_round_id is None or result is None:
        raise RuleViolation("R8.1", "缺少年度考核结果",
                            "依据规则 R8.1 第（五）项，以年度考核不合格免除资格，须引用考核服务已确定的该人员"
                            "年度考核结果（appraisal_round_id）；未收到该结果。")
    if result.kind != "annual" or result.grade != "unqualified":
        raise RuleViolation("R8.1", "考核结果不是年度考核不合格",
                            f"依据规则 R8.1 第（五）项，所引用的考核结果（{result.period}）不是年度考核“不合格”等次。")


MEASURES_TITLE = "《威海市人民监督员履职管理实施办法》"  # 威司发〔2024〕31号 (the seed's title)


@dataclass(frozen=True)
class Notice:
    """R9.1: one written notice, a document: its title, recipient, text, legal basis, issuer and date."""

    recipient_kind: str  # person / employer / recommending_body / procuratorate
    recipient: str
    text: str
    title: str = "免除人民监督员资格通知书"
    basis: str = ""
    issued_by: str = ""
    issued_on: date | None = None

    def as_record(self) -> dict:
        """The notice as stored (JSON) and shown."""
        return {"recipient_kind": self.recipient_kind, "recipient": self.recipient, "title": self.title,
                "text": self.text, "basis": self.basis, "issued_by": self.issued_by,
                "issued_on": self.issued_on.isoformat() if self.issued_on else None}


@dataclass(frozen=True)
class DismissalDocuments:
    notices: list[Notice]
    announcement: str
    announcement_title: str = ""


def dismissal_basis(ground: DismissalGround | int) -> str:
    """R9.1: the provisions a dismissal rests on (Art. 8 item, Art. 9 for the notices)."""
    return f"{MEASURES_TITLE}第八条第（{DismissalGround(ground).value}）项、第九条"


def dismissal_documents(
    *, name: str, employer: str, recommending_body: str, procuratorate: str, bureau: str,
    ground: DismissalGround | int, decided_on: date, certificate_no: str | None, work_card_no: str | None,
) -> DismissalDocuments:
    """R9.1: written notices to the person, employer, recommending body and procuratorate, and a public text."""
    g = DismissalGround(ground)
    when = f"{decided_on.year}年{decided_on.month}月{decided_on.day}日"
    fact = f"{name}同志因{g.label}（依据{MEASURES_TITLE}第八条第（{g.value}）项），经{bureau}决定，" \
           f"自{when}起免除其人民监督员资格"
    recall = f"，收回其人民监督员选任证书（{certificate_no or '无'}）及工作证（{work_card_no or '无'}）。"
    basis = dismissal_basis(g)

    def notice(kind: str, recipient: str, text: str, title: str = "免除人民监督员资格通知书") -> Notice:
        return Notice(kind, recipient, text, title=title, basis=basis, issued_by=bureau, issued_on=decided_on)

    notices = [
        notice("person", name, f"{name}同志：\n    {fact}{recall}\n特此通知。\n{bureau}\n{when}"),
        notice("employer", employer, f"{employer}：\n    贵单位{fact}。\n特此通知。\n{bureau}\n{when}"),
        notice("recommending_body", recommending_body,
               f"{recommending_body}：\n    经贵单位推荐的人民监督员{fact}。\n特此通知。\n{bureau}\n{when}"),
        notice("procuratorate", procuratorate,
               f"{procuratorate}：\n    {fact}，自即日起不再参加人民监督员监督活动的抽选。"
               f"\n特此函告。\n{bureau}\n{when}", title="关于免除人民监督员资格的通报"),
    ]
    title = f"关于免除{name}人民监督员资格的公告"
    announcement = f"{title}\n    {fact}。\n特此公告。\n{bureau}\n{when}"
    return DismissalDocuments(notices, announcement, title)


# --- training and eligibility: R22.1–R22.3, R23.1, R24.1 -----------------------------------------

class TrainingKind(StrEnum):
    """R21.1: initial training (初任培训, with its make-up course R22.2) and term training (任期培训);
    R23.1: the yearly centralized training (年度集中培训)."""

    INITIAL = "initial"
    ANNUAL = "annual"
    MAKEUP = "makeup"
    TERM = "term"


class TrainingFormat(StrEnum):
    """R24.1: the training formats."""

    LECTURE = "lecture"  # 集中授课
    SEMINAR = "seminar"  # 座谈研讨
    OBSERVATION = "observation"  # 现场观摩
    CASE_TEACHING = "case_teaching"  # 案例教学
    FIELD_STUDY = "field_study"  # 实地考察学习
    ONLINE = "online"  # 网络学习


KIND_ZH = {"initial": "初任培训", "annual": "年度集中培训", "makeup": "补训补考", "term": "任期培训"}
FORMAT_ZH = {"lecture": "集中授课", "seminar": "座谈研讨", "observation": "现场观摩",
             "case_teaching": "案例教学", "field_study": "实地考察学习", "online": "网络学习"}

INITIAL_TRAINING_MONTHS = 2

# R23.1: the yearly centralized training is a session of the annual or term kind held in person (every
# format of R24.1 but online learning); the initial course and its make-up do not count.
CENTRALIZED_KINDS = frozenset({TrainingKind.ANNUAL, TrainingKind.TERM})
CENTRALIZED_FORMATS = frozenset(TrainingFormat) - {TrainingFormat.ONLINE}


def counts_as_centralized(kind: str, fmt: str) -> bool:
    """R23.1: does attending a session of this kind and format meet the yearly centralized training?"""
    return kind in CENTRALIZED_KINDS and fmt in CENTRALIZED_FORMATS


def check_term_training(kind: str, held_on: date, *, term_start: date | None, term_end: date | None,
                        attended_term_sessions: int) -> None:
    """R21.1: term training is held once per term: within the current term, and once per supervisor."""
    if kind != TrainingKind.TERM:
        return
    if term_start is None or term_end is None or not term_start <= held_on <= term_end:
        raise RuleViolation("R21.1", "不在任期内", "依据规则 R21.1，任期培训须在该人民监督员本届任期内举行。")
    if attended_term_sessions:
        raise RuleViolation("R21.1", "本届任期已参加任期培训",
                            "依据规则 R21.1，任期培训每届任期安排一次，该人民监督员本届任期已参加过任期培训。")


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
    """Reasons in the EligibilityChanged vocabulary: N-EXCL is published as its own 'excluded' (selection takes
    the person off future rosters); 'not_appointed' has no value there and goes as 'suspended'."""
    out: list[str] = []
    for r in reasons:
        mapped = "suspended" if r == "not_appointed" else r
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

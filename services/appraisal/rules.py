"""Pure rules of the appraisal service (RULES.md R28.1–R39.1). No I/O here."""

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

EXCELLENT, QUALIFIED, BASIC, UNQUALIFIED = "excellent", "qualified", "basically_qualified", "unqualified"
GRADES = (EXCELLENT, QUALIFIED, BASIC, UNQUALIFIED)
GRADE_ZH = {EXCELLENT: "优秀", QUALIFIED: "合格", BASIC: "基本合格", UNQUALIFIED: "不合格"}

# R32.1: the five grounds of an unqualified grade (each needs a reminder on record first)
UNQUALIFIED_GROUNDS = {
    1: "无正当理由不参加培训、监督办案活动",
    2: "长期失联，影响履行监督职责",
    3: "利用人民监督员身份发布、从事与履职无关的言论和活动",
    4: "违反社会公德情节轻微",
    5: "其他有损人民监督员形象的行为，情节轻微",
}


class RuleViolation(Exception):
    """A rule refused the action: `code` is the rule id, `detail` a Chinese explanation."""

    def __init__(self, code: str, title: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.title, self.detail = code, title, detail


# --- R34.1: the round as a state machine ---------------------------------------------------------

STATES = ("opened", "self_summaries", "reviewed", "district_proposed", "bureau_proposed", "public_notice",
          "finalized")
STATE_ZH = {
    "opened": "已启动", "self_summaries": "个人总结已完成",
    "reviewed": "司法局已全面了解（台账、检察院及单位/社区意见）",
    "district_proposed": "区市已提出等次建议", "bureau_proposed": "市司法局已提出拟定等次并征求市检察院意见",
    "public_notice": "优秀名单公示中", "finalized": "已确定",
}
TRANSITIONS: dict[str, str] = dict(itertools.pairwise(STATES))

# which per-person inputs each state accepts (R34.1 order: summary → opinions → district → bureau)
EDITABLE_IN: dict[str, frozenset[str]] = {
    "self_summary": frozenset({"opened"}),
    "opinion": frozenset({"opened", "self_summaries"}),
    "district_grade": frozenset({"reviewed"}),
    "bureau_grade": frozenset({"reviewed", "district_proposed"}),
    "defence": frozenset({"reviewed", "district_proposed", "bureau_proposed", "public_notice"}),
}


def next_state(current: str, wanted: str) -> str:
    """R34.1: `wanted` must be the step right after `current`; else RuleViolation `invalid_transition`."""
    if TRANSITIONS.get(current) != wanted:
        raise RuleViolation("invalid_transition", "考核程序顺序错误",
                            f"依据规则 R34.1，考核轮次当前为“{STATE_ZH.get(current, current)}”，"
                            f"不能进入“{STATE_ZH.get(wanted, wanted)}”。")
    return wanted


def ensure_editable(state: str, what: str) -> None:
    """R34.1: a per-person input is accepted only in its step of the procedure."""
    if state not in EDITABLE_IN[what]:
        allowed = "、".join(STATE_ZH[s] for s in STATES if s in EDITABLE_IN[what])
        raise RuleViolation("R34.1", "不在该考核步骤", f"依据规则 R34.1，此项只能在以下阶段录入：{allowed}。")


def notice_period(start: date, days: int, add_working_days: Callable[[date, int], date]) -> date:
    """R34.1(5): last day of the public notice = the `days`-th working day after `start`."""
    if days < 1:
        raise ValueError("a public notice lasts at least one working day")
    return add_working_days(start, days)


def ensure_notice_over(today: date, notice_end: date | None) -> None:
    """R34.1(5): the round is finalized only after the notice period (inclusive of its last day) ended."""
    if notice_end is None or today <= notice_end:
        raise RuleViolation("R34.1", "公示期未满",
                            f"依据规则 R34.1，优秀等次名单公示期至 {notice_end} 结束，公示期满后方可确定考核结果。")


def result_deadlines(finalized_on: date, add_working_days: Callable[[date, int], date]) -> tuple[date, date]:
    """R34.1(6): (entered into the system by: +5 working days, reported to the province by: +10 working days)."""
    return add_working_days(finalized_on, 5), add_working_days(finalized_on, 10)


def overdue(due: date, done: bool, today: date) -> bool:
    """A tracked deadline is overdue when it is not done and today is after its due date."""
    return not done and today > due


def public_notice_text(*, year_label: str, names: list[str], start: date, end: date, bureau: str) -> str:
    """R34.1(5): the text of the public notice of the proposed excellent list."""
    listed = "、".join(names) if names else "（无）"
    return (f"关于{year_label}人民监督员考核拟确定优秀等次人员的公示\n"
            f"根据《威海市人民监督员管理办法》第三十四条，经个人总结、全面了解、区市建议和征求市人民检察院意见，"
            f"拟确定以下人民监督员为优秀等次：{listed}。\n"
            f"公示期：{start.isoformat()} 至 {end.isoformat()}。公示期间如有异议，请向{bureau}书面反映。\n{bureau}")


# --- R30.1: the 15 % cap -------------------------------------------------------------------------


def excellent_allowed(appraised: int) -> int:
    """R30.1: at most floor(15 % × appraised) excellent grades (integer arithmetic, no floats)."""
    return (15 * appraised) // 100 if appraised > 0 else 0


def ensure_excellent_cap(excellent: int, appraised: int) -> None:
    """R30.1: refuse more excellent grades than floor(15 % × appraised)."""
    allowed = excellent_allowed(appraised)
    if excellent > allowed:
        raise RuleViolation("R30.1", "优秀比例超过 15%",
                            f"依据规则 R30.1，参加考核 {appraised} 人，优秀等次至多 {allowed} 人，"
                            f"当前为 {excellent} 人。")


# --- R28.1 / R31.1 / R33.1: ledger figures, candidates and proposals -----------------------------


@dataclass(frozen=True)
class Figures:
    """Per supervisor-year ledger figures (R28.1), aggregated in SQL."""

    activities: int = 0
    adopted: int = 0
    training_hours: float = 0.0
    trainings_attended: int = 0
    attended_annual_training: bool = False
    reminders: int = 0
    conduct_records: int = 0
    other_activities: int = 0
    late_change_reports: int = 0
    absences: int = 0  # confirmed but absent, recorded by the bureau (R32.1 (1) when without good reason)


@dataclass(frozen=True)
class Thresholds:
    """R33.1 / R31.1 thresholds (from AppraisalSettings; defaults there)."""

    qualified_min_activities: int = 1
    qualified_requires_annual_training: bool = True
    qualified_max_late_change_reports: int = 0
    excellent_min_activities: int = 3
    excellent_min_adopted: int = 1
    excellent_min_training_hours: float = 8.0
    excellent_max_reminders: int = 0
    weight_activity: float = 3.0
    weight_adopted: float = 5.0
    weight_training_hour: float = 0.5


def propose_grade(f: Figures, t: Thresholds) -> str:
    """R33.1: qualified if the configured minimums are met, else basically qualified (a person decides)."""
    if f.activities < t.qualified_min_activities:
        return BASIC
    if t.qualified_requires_annual_training and not f.attended_annual_training:
        return BASIC
    if f.late_change_reports > t.qualified_max_late_change_reports:
        return BASIC
    return QUALIFIED


def excellent_eligible(f: Figures, t: Thresholds) -> bool:
    """R31.1: many activities, adopted (quality) opinions, active training, no reminder on record."""
    return (f.activities >= t.excellent_min_activities and f.adopted >= t.excellent_min_adopted
            and f.training_hours >= t.excellent_min_training_hours and f.attended_annual_training
            and f.reminders <= t.excellent_max_reminders and propose_grade(f, t) == QUALIFIED)


def candidate_score(f: Figures, t: Thresholds) -> float:
    """R31.1: the ranking score of an excellent candidate from ledger figures."""
    return f.activities * t.weight_activity + f.adopted * t.weight_adopted + f.training_hours * t.weight_training_hour


def rank_candidates(figures: Mapping[str, Figures], t: Thresholds) -> list[tuple[str, float]]:
    """R31.1: eligible people by score (desc), ties by id for a stable order; a person decides."""
    scored = [(key, candidate_score(f, t)) for key, f in figures.items() if excellent_eligible(f, t)]
    return sorted(scored, key=lambda kv: (-kv[1], kv[0]))


# --- R32.1: unqualified needs grounds with a prior reminder --------------------------------------


def ensure_unqualified_grounds(grounds: Iterable[int], reminded: Iterable[int]) -> None:
    """R32.1: an unqualified grade names ≥ 1 ground (1–5), each with a reminder on record before it."""
    named, on_record = set(grounds), set(reminded)
    if not named:
        raise RuleViolation("R32.1", "不合格须有法定情形",
                            "依据规则 R32.1，确定为不合格须列明第三十二条所列情形（1–5）。")
    unknown = sorted(g for g in named if g not in UNQUALIFIED_GROUNDS)
    if unknown:
        raise RuleViolation("R32.1", "不合格情形无效", f"依据规则 R32.1，情形编号只能为 1–5：{unknown}。")
    missing = sorted(named - on_record)
    if missing:
        raise RuleViolation("R32.1", "缺少提醒教育记录",
                            f"依据规则 R32.1，情形 {missing} 无经提醒教育的记录，不能确定为不合格。")


def flagged_grounds(reminded: Iterable[int]) -> list[int]:
    """R32.1: the grounds an unqualified grade could rest on (those with a reminder on record)."""
    return sorted({g for g in reminded if g in UNQUALIFIED_GROUNDS})


# --- R35.1: right of statement and defence -------------------------------------------------------


def defence_window_end(sent_on: date, days: int) -> date:
    """R35.1: the statement/defence window closes `days` calendar days after the notice was sent."""
    return sent_on + timedelta(days=days)


def defence_closed(*, sent_on: date | None, window_end: date | None, statement_final: bool, today: date) -> bool:
    """R35.1: closed when a notice was sent and either its window ended or the statement is final."""
    if sent_on is None or window_end is None:
        return False
    return statement_final or today >= window_end


def ensure_defence_closed(supervisor: str, *, sent_on: date | None, window_end: date | None,
                          statement_final: bool, today: date) -> None:
    """R35.1: an unqualified grade is finalized only after notice + closed statement/defence window."""
    if sent_on is None:
        raise RuleViolation("R35.1", "未告知理由和依据",
                            f"依据规则 R35.1，拟定 {supervisor} 为不合格前须告知理由、依据及陈述申辩权利。")
    if not defence_closed(sent_on=sent_on, window_end=window_end, statement_final=statement_final, today=today):
        raise RuleViolation("R35.1", "陈述申辩期未满",
                            f"依据规则 R35.1，{supervisor} 的陈述申辩期至 {window_end} 届满，"
                            "届满或本人提交最终陈述后方可确定。")


# --- R36.1: the term round -----------------------------------------------------------------------


@dataclass(frozen=True)
class TermStanding:
    """R36.1: what the annual grades of a term allow for the term grade."""

    excellent_count: int
    has_low: bool  # any basically qualified or unqualified annual grade
    eligible: bool = field(init=False)
    automatic: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "eligible", self.excellent_count >= 1 and not self.has_low)
        object.__setattr__(self, "automatic", self.excellent_count > 3 and not self.has_low)


def term_standing(annual_grades: Iterable[str]) -> TermStanding:
    """R36.1: eligible for term excellent with ≥ 1 annual excellent and none low; automatic with > 3."""
    grades = list(annual_grades)
    return TermStanding(grades.count(EXCELLENT), any(g in (BASIC, UNQUALIFIED) for g in grades))


def term_grade(proposed: str, standing: TermStanding) -> str:
    """R36.1: the term grade: automatic excellence overrides the proposal; ineligible excellent refused."""
    if standing.automatic:
        return EXCELLENT
    if proposed == EXCELLENT and not standing.eligible:
        raise RuleViolation("R36.1", "不符合任期优秀条件",
                            "依据规则 R36.1，任期考核优秀须任期内年度考核获得过优秀且无基本合格、不合格。")
    return proposed


# --- R39.1 / R38.1: notices ----------------------------------------------------------------------

RECIPIENTS = ("person", "employer", "recommending_body", "procuratorate")
RECIPIENT_ZH = {"person": "本人", "employer": "工作单位", "recommending_body": "推荐单位或组织",
                "procuratorate": "威海市人民检察院"}


def result_notice_text(*, recipient: str, addressee: str, name: str, period_label: str, grade: str,
                       bureau: str, on: date) -> str:
    """R39.1: the result notice to one of the four recipients (person, employer, recommending body, procuratorate)."""
    commend = "，并予以通报表扬" if grade == EXCELLENT else ""
    verb = "通报" if recipient == "procuratorate" else "通知"
    return (f"{addressee}：\n经考核，人民监督员{name}{period_label}考核等次为“{GRADE_ZH[grade]}”{commend}。"
            f"特此{verb}。\n{bureau}\n{on.isoformat()}")


def commendation_text(*, period_label: str, names: list[str], bureau: str, on: date) -> str:
    """R38.1: the public commendation (通报表扬) of the excellent supervisors of a round."""
    return (f"关于对{period_label}考核优秀人民监督员予以通报表扬的决定\n"
            f"{'、'.join(names)}等 {len(names)} 名人民监督员在{period_label}考核中被确定为优秀等次，现予以通报表扬。\n"
            f"{bureau}\n{on.isoformat()}")

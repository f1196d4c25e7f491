"""Pure rules of the appraisal service (RULES.md R28.1–R39.1). No I/O here."""

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

REGULATION = "《威海市人民监督员履职管理实施办法》"
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


def date_zh(d: date) -> str:
    """A date as documents of record write it: 2026年12月3日 (Arabic numerals, no leading zeros)."""
    return f"{d.year}年{d.month}月{d.day}日"


# --- R29.1: when rounds open ---------------------------------------------------------------------


def appraisal_year(today: date, opens: tuple[int, int] = (12, 1)) -> int:
    """R29.1: the year whose annual appraisal is due on `today` (from its year's end into the next year)."""
    return today.year if today >= date(today.year, *opens) else today.year - 1


def ensure_annual_round_due(year: int, today: date, opens: tuple[int, int] = (12, 1)) -> None:
    """R29.1: an annual round opens at the year's end (from `opens` of that year) or early next year, never before."""
    first = date(year, *opens)
    if today < first:
        raise RuleViolation("R29.1", "年度考核尚未到期",
                            f"依据规则 R29.1，年度考核在每年年末或者翌年年初进行：{year}年度考核自 {first.isoformat()} "
                            "起方可启动。")


def ensure_term_annuals_finalized(pending: Mapping[str, Iterable[int]]) -> None:
    """R29.1: a term round opens only when each person's annual rounds of the term are finalized."""
    waiting = {who: sorted(set(years)) for who, years in pending.items()}
    waiting = {who: years for who, years in waiting.items() if years}
    if waiting:
        listed = "；".join(f"{who}（{'、'.join(str(y) for y in years)}年度）"
                          for who, years in sorted(waiting.items())[:10])
        raise RuleViolation("R29.1", "年度考核尚未全部确定",
                            "依据规则 R29.1，任期考核在任期内年度考核的基础上进行，"
                            f"以下人员的年度考核尚未确定：{listed}。")


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
# R30.1: no state without an exit: every state before `finalized` but the first can be sent back one step
BACK: dict[str, str] = {later: earlier for earlier, later in itertools.pairwise(STATES) if later != "finalized"}
# a grade corrected after step (4) goes through step (4) and the public notice (5) again
CORRECTION_RESTARTS_AT = "district_proposed"

# which inputs each state accepts (R34.1 order: summary → opinions → district → bureau)
EDITABLE_IN: dict[str, frozenset[str]] = {
    "self_summary": frozenset({"opened"}),
    "opinion": frozenset({"opened", "self_summaries"}),
    "consultation": frozenset({"reviewed"}),
    "district_grade": frozenset({"reviewed"}),
    "bureau_grade": frozenset({"reviewed", "district_proposed"}),
    "grade_correction": frozenset({"reviewed", "district_proposed", "bureau_proposed", "public_notice"}),
    "cap_justification": frozenset({"reviewed", "district_proposed", "finalized"}),
    "defence": frozenset({"reviewed", "district_proposed", "bureau_proposed", "public_notice", "finalized"}),
    "result_correction": frozenset({"finalized"}),
}


def next_state(current: str, wanted: str) -> str:
    """R34.1: `wanted` must be the step right after `current`; else RuleViolation `invalid_transition`."""
    if TRANSITIONS.get(current) != wanted:
        raise RuleViolation("invalid_transition", "考核程序顺序错误",
                            f"依据规则 R34.1，考核轮次当前为“{STATE_ZH.get(current, current)}”，"
                            f"不能进入“{STATE_ZH.get(wanted, wanted)}”。")
    return wanted


def previous_state(current: str) -> str:
    """R30.1/R34.1: a round not yet finalized goes back one step (with a reason); `opened` has none before it."""
    if current not in BACK:
        why = "已确定的考核结果只能通过结果更正变更。" if current == "finalized" else "已是第一步。"
        raise RuleViolation("invalid_transition", "不能退回上一步",
                            f"依据规则 R34.1，考核轮次当前为“{STATE_ZH.get(current, current)}”，{why}")
    return BACK[current]


def exits(state: str) -> frozenset[str]:
    """R30.1: the ways out of each state: forward, back one step (before finalizing), result correction (after)."""
    ways = set()
    if state in TRANSITIONS:
        ways.add("forward")
    if state in BACK:
        ways.add("back")
    if state == "finalized":
        ways.add("correct")
    return frozenset(ways)


def ensure_editable(state: str, what: str) -> None:
    """R34.1: a per-person input is accepted only in its step of the procedure."""
    if state not in EDITABLE_IN[what]:
        allowed = "、".join(STATE_ZH[s] for s in STATES if s in EDITABLE_IN[what])
        raise RuleViolation("R34.1", "不在该考核步骤", f"依据规则 R34.1，此项只能在以下阶段录入：{allowed}。")


def ensure_districts_consulted(districts: Iterable[str], consulted: Iterable[str]) -> None:
    """R34.1(3): each district bureau proposes grades only after consulting its procuratorate (recorded)."""
    missing = sorted(set(districts) - set(consulted))
    if missing:
        raise RuleViolation("R34.1", "未记录征求区市人民检察院意见",
                            f"依据规则 R34.1(3)，以下区市尚未记录征求同级人民检察院意见：{'、'.join(missing)}。")


def ensure_notice_days(days: int, minimum: int) -> None:
    """R34.1(5): the public notice lasts at least the configured working days (longer if the bureau wants)."""
    if days < minimum:
        raise RuleViolation("R34.1", "公示期过短", f"依据规则 R34.1(5)，公示期不少于 {minimum} 个工作日。")


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


def public_notice_document(*, year_label: str, names: list[str], start: date, end: date, bureau: str,
                           on: date | None = None) -> dict:
    """R34.1(5): the public notice (公示) of the proposed excellent list."""
    listed = "、".join(names) if names else "（无）"
    return {"title": f"关于{year_label}人民监督员考核拟确定优秀等次人员的公示", "addressee": None, "issuer": bureau,
            "date": on or start, "date_zh": date_zh(on or start),
            "paragraphs": [f"根据{REGULATION}第三十四条，经个人总结、全面了解、区市建议和征求市人民检察院意见，"
                           f"拟确定以下人民监督员为优秀等次：{listed}。",
                           f"公示期：{date_zh(start)}至{date_zh(end)}。公示期间如有异议，请向{bureau}书面反映。"]}


def public_notice_text(**kwargs) -> str:
    """R34.1(5): the plain text of `public_notice_document(**kwargs)`."""
    return document_text(public_notice_document(**kwargs))


# --- R30.1: the 15 % cap -------------------------------------------------------------------------


def excellent_allowed(appraised: int) -> int:
    """R30.1: at most floor(15 % × appraised) excellent grades (integer arithmetic, no floats)."""
    return (15 * appraised) // 100 if appraised > 0 else 0


@dataclass(frozen=True)
class CapStatus:
    """R30.1: excellent grades against floor(15 % × appraised); `exceeded` is a flag, not a refusal."""

    appraised: int
    excellent: int

    @property
    def allowed(self) -> int:
        return excellent_allowed(self.appraised)

    @property
    def exceeded(self) -> bool:
        return self.excellent > self.allowed


def ensure_cap_justified(status: CapStatus, *, justified_count: int | None, justified_by: str | None,
                         approved_by: str | None) -> None:
    """R30.1 ("一般不超过"): above the cap only with a recorded justification covering the count, approved by a
    second bureau user. Checked when the bureau proposes the grades (step 4), never after the public notice."""
    if not status.exceeded:
        return
    head = (f"依据规则 R30.1，参加考核 {status.appraised} 人，优秀等次一般不超过 {status.allowed} 人，"
            f"当前拟定 {status.excellent} 人")
    if justified_count is None or justified_count < status.excellent:
        raise RuleViolation("R30.1", "优秀比例超过 15%，须说明理由",
                            f"{head}：须记录超出比例的理由说明（覆盖 {status.excellent} 人），"
                            "并经另一名市司法局人员批准。")
    if approved_by is None or approved_by == justified_by:
        raise RuleViolation("R30.1", "超出比例的说明尚未批准",
                            f"{head}：理由说明须经说明人以外的另一名市司法局人员批准。")


def ensure_second_user(author: str | None, approver: str) -> None:
    """R30.1: a justification is approved by a second bureau user, never by its author."""
    if author is None:
        raise RuleViolation("R30.1", "尚无理由说明", "依据规则 R30.1，须先记录超出比例的理由说明，再行批准。")
    if author == approver:
        raise RuleViolation("R30.1", "不能批准本人的说明",
                            "依据规则 R30.1，超出比例的理由说明须由另一名市司法局人员批准。")


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


# R31.1: the five conditions of an annual excellent grade
EXCELLENT_CRITERIA = {
    "political_quality": "政治素质高",
    "ethics": "恪守职业道德",
    "activities": "参加人民检察院办案活动多",
    "opinion_quality": "提出监督意见质量高",
    "training": "积极参加业务培训",
}


def ensure_excellent_criteria(criteria: Mapping[str, Mapping] | None) -> dict[str, dict]:
    """R31.1: an annual excellent grade records the five conditions as a checklist, each met, with its evidence."""
    given = criteria or {}
    missing = [key for key in EXCELLENT_CRITERIA
               if key not in given or not given[key].get("met") or not str(given[key].get("evidence") or "").strip()]
    if missing:
        raise RuleViolation("R31.1", "优秀等次条件未逐项确认",
                            "依据规则 R31.1，年度考核确定为优秀须逐项确认以下条件并注明依据："
                            f"{'、'.join(EXCELLENT_CRITERIA[k] for k in missing)}。")
    return {key: {"label": label, "met": True, "evidence": str(given[key]["evidence"]).strip()}
            for key, label in EXCELLENT_CRITERIA.items()}


def suggested_evidence(f: Figures) -> dict[str, str]:
    """R31.1: what the ledger says for each condition (a person judges; political quality is never from figures)."""
    return {"political_quality": "", "ethics": f"台账提醒教育记录 {f.reminders} 次",
            "activities": f"台账记录参加监督办案活动 {f.activities} 次",
            "opinion_quality": f"监督意见被采纳 {f.adopted} 次",
            "training": f"参加培训 {f.trainings_attended} 次、共 {f.training_hours:g} 学时"
                        f"{'，参加年度集中培训' if f.attended_annual_training else '，未参加年度集中培训'}"}


def candidate_score(f: Figures, t: Thresholds) -> float:
    """R31.1: the ranking score of an excellent candidate from ledger figures."""
    return f.activities * t.weight_activity + f.adopted * t.weight_adopted + f.training_hours * t.weight_training_hour


def rank_candidates(figures: Mapping[str, Figures], t: Thresholds) -> list[tuple[str, float]]:
    """R31.1: eligible people by score (desc), ties by id for a stable order; a person decides."""
    scored = [(key, candidate_score(f, t)) for key, f in figures.items() if excellent_eligible(f, t)]
    return sorted(scored, key=lambda kv: (-kv[1], kv[0]))


# --- R32.1: unqualified needs grounds with a prior reminder --------------------------------------


def supported_grounds(reminders: Mapping[int, Iterable[date]], continued: Mapping[int, Iterable[date]], *,
                      start: date, end: date, graded_on: date) -> dict[int, tuple[date, date]]:
    """R32.1: grounds with a reminder dated within the period and before the grade (never after), and a record
    that the conduct went on after it (up to the grade, within the period): ground → (reminder, conduct after)."""
    last = min(end, graded_on)
    out: dict[int, tuple[date, date]] = {}
    for ground in UNQUALIFIED_GROUNDS:
        for reminded in sorted(d for d in reminders.get(ground, ()) if start <= d <= end and d < graded_on):
            after = sorted(d for d in continued.get(ground, ()) if reminded < d <= last)
            if after:
                out[ground] = (reminded, after[0])
                break
    return out


def ensure_unqualified_grounds(grounds: Iterable[int], supported: Mapping[int, object]) -> None:
    """R32.1: an unqualified grade names ≥ 1 ground (1–5), each reminded first and still not corrected after."""
    named = set(grounds)
    if not named:
        raise RuleViolation("R32.1", "不合格须有法定情形",
                            "依据规则 R32.1，确定为不合格须列明第三十二条所列情形（1–5）。")
    unknown = sorted(g for g in named if g not in UNQUALIFIED_GROUNDS)
    if unknown:
        raise RuleViolation("R32.1", "不合格情形无效", f"依据规则 R32.1，情形编号只能为 1–5：{unknown}。")
    missing = sorted(named - set(supported))
    if missing:
        raise RuleViolation("R32.1", "缺少提醒教育及仍未改正的记录",
                            f"依据规则 R32.1，情形 {missing} 没有在考核期内、拟定等次之前的提醒教育记录，"
                            "或没有提醒之后仍未改正的记录，不能确定为不合格。")


def flagged_grounds(supported: Mapping[int, object]) -> list[int]:
    """R32.1: the grounds an unqualified grade could rest on (reminded, and the conduct went on after)."""
    return sorted(g for g in supported if g in UNQUALIFIED_GROUNDS)


# --- R35.1: right of statement and defence -------------------------------------------------------


def defence_window_end(sent_on: date, days: int,
                       next_working_day: Callable[[date], date] | None = None) -> date:
    """R35.1 (Civil Code art. 201, 203): counted from the day after the notice was sent, the window's last day
    is the `days`-th; a last day that is a rest day or holiday moves to the next working day."""
    end = sent_on + timedelta(days=days)
    return next_working_day(end) if next_working_day else end


def defence_closed(*, sent_on: date | None, window_end: date | None, statement_final: bool, today: date) -> bool:
    """R35.1: closed when a notice was sent and either its last day is over or a final statement was recorded."""
    if sent_on is None or window_end is None:
        return False
    return statement_final or today > window_end


def ensure_defence_notified(unnotified: Iterable[str]) -> None:
    """R35.1: before the bureau proposes an unqualified grade, the person is told the reasons, basis and rights."""
    names = sorted(unnotified)
    if names:
        raise RuleViolation("R35.1", "未告知理由和依据",
                            f"依据规则 R35.1，拟定为不合格前须告知理由、依据及陈述申辩权利：{'、'.join(names[:10])}。")


def defence_notice_document(*, name: str, period_label: str, reasons: str, basis: str, grounds: Iterable[int],
                            window_end: date, bureau: str, on: date) -> dict:
    """R35.1: the data of the 告知书 (reasons, basis, the right to state and defend, until when)."""
    cited = "；".join(f"第三十二条第（{g}）项“{UNQUALIFIED_GROUNDS[g]}”" for g in sorted(set(grounds))
                     if g in UNQUALIFIED_GROUNDS)
    paragraphs = [
        f"根据{REGULATION}第三十二条、第三十五条的规定，本局拟将你{period_label}考核等次确定为“不合格”。现将有关事项告知如下：",
        f"一、理由：{reasons}",
        f"二、依据：{basis}" + (f"（{cited}）" if cited else ""),
        f"三、你享有陈述和申辩的权利。你可以自本告知书送达之日的次日起至{date_zh(window_end)}二十四时前，"
        f"向{bureau}提出陈述和申辩（书面材料请注明日期）；期满未提出的，视为放弃陈述和申辩的权利。",
    ]
    return {"title": "人民监督员考核拟确定不合格等次告知书", "addressee": f"{name}：", "paragraphs": paragraphs,
            "issuer": bureau, "date": on, "date_zh": date_zh(on), "window_end": window_end}


def document_text(doc: Mapping) -> str:
    """The plain text of a document's data (title, addressee, paragraphs, issuer, date)."""
    return "\n".join([doc["title"], *([doc["addressee"]] if doc["addressee"] else []), *doc["paragraphs"],
                      doc["issuer"], doc["date_zh"]])


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


def ensure_term_grades(conflicts: Iterable[str]) -> None:
    """R36.1, at step (4): each stored term grade still agrees with the annual results (else regrade)."""
    names = sorted(conflicts)
    if names:
        raise RuleViolation("R36.1", "任期考核等次与年度考核结果不符",
                            "依据规则 R36.1，以下人员的任期考核等次须按任期内年度考核结果重新拟定："
                            f"{'、'.join(names[:10])}。")


def term_conflict(stored: str | None, standing: TermStanding) -> bool:
    """R36.1: whether a stored term grade no longer follows from the annual results."""
    if stored is None:
        return False
    try:
        return term_grade(stored, standing) != stored
    except RuleViolation:
        return True


# --- R39.1 / R38.1: notices ----------------------------------------------------------------------

RECIPIENTS = ("person", "employer", "recommending_body", "procuratorate")
RECIPIENT_ZH = {"person": "本人", "employer": "工作单位", "recommending_body": "推荐单位或组织",
                "procuratorate": "威海市人民检察院"}


def result_notice_document(*, recipient: str, addressee: str, name: str, period_label: str, grade: str,
                           bureau: str, on: date, correction: str | None = None) -> dict:
    """R39.1: the result notice to one of the four recipients (person, employer, recommending body, procuratorate);
    with `correction`, the notice of a corrected result (the earlier one stands corrected)."""
    commend = "，并予以通报表扬" if grade == EXCELLENT else ""
    verb = "通报" if recipient == "procuratorate" else "通知"
    lead = f"经复核（{correction}），更正" if correction else f"根据{REGULATION}，经考核，"
    title = f"关于人民监督员{name}{period_label}考核{'结果更正' if correction else '结果'}的{verb}"
    return {"title": title, "addressee": f"{addressee}：", "issuer": bureau, "date": on, "date_zh": date_zh(on),
            "paragraphs": [f"{lead}人民监督员{name}{period_label}考核等次为“{GRADE_ZH[grade]}”{commend}。",
                           f"特此{verb}。"]}


def result_notice_text(**kwargs) -> str:
    """R39.1: the plain text of `result_notice_document(**kwargs)`."""
    return document_text(result_notice_document(**kwargs))


def commendation_document(*, period_label: str, names: list[str], bureau: str, on: date) -> dict:
    """R38.1: the public commendation (通报表扬) of the excellent supervisors of a round."""
    return {"title": f"关于对{period_label}考核优秀人民监督员予以通报表扬的决定",
            "addressee": "各区市司法局，各人民监督员：", "issuer": bureau, "date": on, "date_zh": date_zh(on),
            "paragraphs": [f"根据{REGULATION}第三十八条，{'、'.join(names)}等{len(names)}名人民监督员在{period_label}"
                           "考核中被确定为优秀等次，现予以通报表扬。",
                           "希望受到表扬的人民监督员珍惜荣誉，再接再厉；全市人民监督员以他们为榜样，依法履职，"
                           "为促进司法公正作出新的贡献。"]}


def commendation_text(**kwargs) -> str:
    """R38.1: the plain text of `commendation_document(**kwargs)`."""
    return document_text(commendation_document(**kwargs))


# --- work list and deadlines (R29.1, R34.1, R35.1): who acts next, and by when --------------------

BUREAU, DISTRICT, PROCURATORATE, SUPERVISOR = "bureau_admin", "district_bureau", "procuratorate", "supervisor"


@dataclass(frozen=True)
class PendingStep:
    """R34.1: what a round waits for: the next action, who acts, and the first day it may be taken."""

    action: str
    label: str
    roles: tuple[str, ...]
    not_before: date | None = None


# R34.1: in each state, the step the round waits for and who takes part in it (the bureau moves it on)
PENDING_IN: dict[str, PendingStep] = {
    "opened": PendingStep("self_summaries", "人民监督员提交个人总结（R34.1(1)）", (SUPERVISOR, BUREAU)),
    "self_summaries": PendingStep("reviewed", "听取检察院、工作单位或社区意见，全面了解履职情况（R34.1(2)）",
                                  (PROCURATORATE, BUREAU)),
    "reviewed": PendingStep("district_proposed", "区市司法局征求同级检察院意见后提出等次建议（R34.1(3)）",
                            (DISTRICT, BUREAU)),
    "district_proposed": PendingStep("bureau_proposed", "市司法局拟定等次并征求市检察院意见（R34.1(4)）", (BUREAU,)),
    "bureau_proposed": PendingStep("public_notice", "公示优秀等次名单（R34.1(5)）", (BUREAU,)),
    "public_notice": PendingStep("finalized", "公示期满后确定考核结果（R34.1(5)）", (BUREAU,)),
}


def pending_step(state: str, *, notice_end: date | None, entered_done: bool,
                 reported_done: bool) -> PendingStep | None:
    """R34.1: the step a round waits for; after finalizing, the entry (5 wd) and report (10 wd) of (6); None when
    nothing is left."""
    if state in PENDING_IN:
        step = PENDING_IN[state]
        if state == "public_notice" and notice_end is not None:
            return PendingStep(step.action, step.label, step.roles, finalize_not_before(notice_end))
        return step
    if state == "finalized" and not entered_done:
        return PendingStep("entered", "考核结果录入系统（R34.1(6)，5 个工作日内）", (BUREAU,))
    if state == "finalized" and not reported_done:
        return PendingStep("reported", "考核结果上报省司法厅（R34.1(6)，10 个工作日内）", (BUREAU,))
    return None


def states_awaiting(role: str) -> list[str]:
    """R34.1: the states in which `role` takes part in the step the round waits for (finalized: the bureau)."""
    states = [s for s, step in PENDING_IN.items() if role in step.roles]
    return states + (["finalized"] if role == BUREAU else [])


def annual_round_due_by(year: int, due_by: tuple[int, int] = (1, 31)) -> date:
    """R29.1: the last day an annual round of `year` should be opened ("年末或者翌年年初": by `due_by` next year)."""
    return date(year + 1, *due_by)


def finalize_not_before(notice_end: date) -> date:
    """R34.1(5): the first day the round may be finalized: the day after the notice's last day."""
    return notice_end + timedelta(days=1)

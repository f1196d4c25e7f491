"""Pure rules of the notify service: which message an event or a deadline makes, for whom, how urgent;
quiet hours, retry backoff, the reminder stages, and the guard that no full id number is ever sent.

Rule ids: R12.1 (the drawn are contacted and confirmed), R13.2 (recusal decided by the bureau), R14.1
(short staffing, re-draw), R14.2 (released), R10.1/R10.2 (lead time, short-notice consent), R17.1
(feedback form), R18.1 (opinion handling told to the supervisor), R28.1 (absence in the ledger),
R30.1/R39.1 (appraisal results notified to the person), R38.1 (commendation), R42.1 (subsidy), R3.1
(no full id number or other needless personal data in a message).
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from shared import activity_types
from shared.clock import SHANGHAI
from shared.crypto import mask_id_number

Kind = Literal[
    "supervisor_asked", "supervisor_drawn", "supervisor_released", "recusal_decided", "absence_recorded",
    "opinion_adoption",
    "materials_shared", "opinion_recorded", "feedback_signed", "appraisal_finalized", "commendation_issued",
    "defence_notice_sent", "subsidy_approved", "subsidy_paid",
    "short_notice_consent", "short_staffed", "recusal_to_decide", "request_refused", "receipt_mismatch",
    "deadline_day_before", "deadline_due_day", "deadline_overdue",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
Stage = Literal["day_before", "due_day", "overdue"]
STAGE_LABELS = {"day_before": "明日到期", "due_day": "今日到期", "overdue": "已逾期"}
GRADE_LABELS = {"excellent": "优秀", "qualified": "合格", "basically_qualified": "基本合格",
                "unqualified": "不合格"}
RELEASE_LABELS = {"declined": "您已表示不能参加", "recused": "您已回避", "withdrawn": "您已退出"}
# an activity notice is urgent (an SMS even in quiet hours) when the activity begins within this long
URGENT_WITHIN = timedelta(hours=24)
# an 18-digit resident id number (17 digits and a digit or X) standing alone
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")


@dataclass(frozen=True)
class Activity:
    """What a notice says about the activity of a request (notify's projection of SupervisionRequested)."""

    activity_type: str
    place: str
    starts_at: datetime
    district: str
    office: str


@dataclass(frozen=True)
class Draft:
    """A message before it is stored: its audience (a supervisor, or a role and district) and text."""

    kind: Kind
    rule: str | None
    title: str
    body: str
    subject_type: str
    subject_id: str
    supervisor_id: str | None = None
    role: str | None = None
    district: str | None = None
    urgent: bool = False
    channels: tuple[str, ...] = field(default=("inbox",))

    @property
    def recipient(self) -> str:
        return f"supervisor:{self.supervisor_id}" if self.supervisor_id else f"role:{self.role}:{self.district or '*'}"


def redact_id_numbers(text: str) -> str:
    """R3.1: any full id number in a text becomes its masked form (a message never carries one)."""
    return ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)


def cn_day(day: date) -> str:
    """A date as people read it in a message: 2026年12月17日 (no leading zeros)."""
    return f"{day.year}年{day.month}月{day.day}日"


def local_time(moment: datetime) -> str:
    """A moment in Shanghai time as people read it: 2026年12月17日 09:30."""
    local = moment.astimezone(SHANGHAI)
    return f"{cn_day(local.date())} {local:%H:%M}"


def describe(activity: Activity | None) -> str:
    if activity is None:
        return "该次监督活动"
    return f"{local_time(activity.starts_at)}在{activity.place}的{activity_types.label(activity.activity_type)}活动"


def activity_is_soon(activity: Activity | None, now: datetime) -> bool:
    return activity is not None and activity.starts_at - now <= URGENT_WITHIN


def to_supervisor(supervisor_id: object, **values) -> Draft:
    """Supervisors are told in the inbox and by SMS."""
    return Draft(supervisor_id=str(supervisor_id), channels=("inbox", "sms"), **values)


# --- events → messages ------------------------------------------------------------------------

def supervisor_asked(*, request_id, supervisor_id, draw_order: int, activity: Activity | None,
                     now: datetime) -> Draft:
    """R12.1: the supervisor's turn in draw order came: asked whether they can take part."""
    return to_supervisor(
        supervisor_id, kind="supervisor_asked", rule="R12.1", subject_type="request", subject_id=str(request_id),
        title="您已被随机抽选，请确认能否参加",
        body=f"您已被随机抽选参加{describe(activity)}（抽选顺序第{draw_order}位）。市司法局将与您联系；您也可以登录"
             "人民监督员信息系统确认参加、说明不能参加的正当理由或申请回避（第十二条至第十四条）。",
        urgent=activity_is_soon(activity, now))


def supervisor_drawn(*, request_id, supervisor_id, activity: Activity | None, now: datetime) -> Draft:
    """R12.1: a drawn supervisor confirmed participation: what, when, where."""
    return to_supervisor(
        supervisor_id, kind="supervisor_drawn", rule="R12.1", subject_type="request", subject_id=str(request_id),
        title="监督活动参加确认",
        body=f"您已被抽选并确认参加{describe(activity)}。如不能参加，请及时告知市司法局（第十四条）。",
        urgent=activity_is_soon(activity, now))


def supervisor_released(*, request_id, supervisor_id, reason: str, activity: Activity | None,
                        now: datetime) -> Draft:
    """R14.2: a confirmed supervisor no longer takes part (recorded on their behalf)."""
    label = RELEASE_LABELS.get(reason, "您已不再参加")
    return to_supervisor(
        supervisor_id, kind="supervisor_released", rule="R14.2", subject_type="request",
        subject_id=str(request_id), title="监督活动参加情况变更",
        body=f"市司法局已记录：{label}{describe(activity)}，无需到场。",
        urgent=activity_is_soon(activity, now))


def recusal_decided(*, request_id, supervisor_id, granted: bool, activity: Activity | None,
                    now: datetime) -> Draft:
    """R13.2: the bureau decided a recusal concerning the supervisor."""
    outcome = "决定您回避，无需到场" if granted else "决定您不予回避，请按时参加"
    return to_supervisor(
        supervisor_id, kind="recusal_decided", rule="R13.2", subject_type="request", subject_id=str(request_id),
        title="回避决定", body=f"关于{describe(activity)}，市司法局{outcome}。",
        urgent=activity_is_soon(activity, now))


def absence_recorded(*, request_id, supervisor_id, activity_date: date) -> Draft:
    """R28.1: an absence was recorded for the supervisor (it counts in the ledger)."""
    return to_supervisor(
        supervisor_id, kind="absence_recorded", rule="R28.1", subject_type="request", subject_id=str(request_id),
        title="缺席记录", body=f"市司法局记录您未参加{cn_day(activity_date)}的监督活动，该记录将计入履职台账。"
                            "如有异议，请联系市司法局。")


def opinion_adoption(*, activity_id, supervisor_id, adopted: bool, reason: str) -> Draft:
    """R18.1: the procuratorate tells the supervisor how the opinion was handled."""
    outcome = "已被采纳" if adopted else "未被采纳"
    return to_supervisor(
        supervisor_id, kind="opinion_adoption", rule="R18.1", subject_type="activity", subject_id=str(activity_id),
        title="监督意见处理情况", body=f"您提出的监督意见{outcome}。说明：{reason}")


def materials_shared(*, activity_id, supervisor_id, activity: Activity | None) -> Draft:
    """R15.1: case materials were provided; the confirmed supervisor may read them until signing the form."""
    return to_supervisor(
        supervisor_id, kind="materials_shared", rule="R15.1", subject_type="activity", subject_id=str(activity_id),
        title="案件材料已提供",
        body=f"检察院已为{describe(activity)}提供案件材料，请登录系统查阅（签署反馈表后不再提供，第十五条）。")


def opinion_recorded(*, activity_id, supervisor_id, source: str, version: int, activity: Activity | None) -> Draft:
    """R16.1, R17.1: the opinion was recorded (by the procuratorate on the supervisor's behalf, or by
    themself); the feedback form waits for their signature."""
    who = "检察院已如实记录您的监督意见" if source == "procuratorate_record" else "您的监督意见已保存"
    again = f"（第{version}版）" if version > 1 else ""
    return to_supervisor(
        supervisor_id, kind="opinion_recorded", rule="R17.1", subject_type="activity", subject_id=str(activity_id),
        title="监督意见已记录，请签署反馈表",
        body=f"{who}{again}：{describe(activity)}。请核对后在《威海市人民监督员履职情况反馈表》上签字确认。")


def feedback_signed(*, activity_id, supervisor_id, activity_date: date) -> Draft:
    """R17.1: the supervisor's signature on the feedback form was recorded."""
    return to_supervisor(
        supervisor_id, kind="feedback_signed", rule="R17.1", subject_type="activity", subject_id=str(activity_id),
        title="履职情况反馈表已签署",
        body=f"您已签署{cn_day(activity_date)}监督活动的《威海市人民监督员履职情况反馈表》，签署后不可修改。")


def appraisal_finalized(*, round_id, supervisor_id, kind: str, period: str, grade: str,
                        result_version: int = 1) -> Draft:
    """R30.1, R39.1: the appraisal result is notified to the person."""
    which = "年度考核" if kind == "annual" else "任期考核"
    label = GRADE_LABELS.get(grade, grade)
    corrected = f"（更正后的第{result_version}版）" if result_version > 1 else ""
    body = f"您的{period}{which}结果为：{label}{corrected}。"
    if grade == "unqualified":
        body += "结果将依照《实施办法》第三十七条处理；如有疑问，请联系市司法局。"
    return to_supervisor(
        supervisor_id, kind="appraisal_finalized", rule="R39.1", subject_type="round", subject_id=str(round_id),
        title="考核结果通知", body=body)


def defence_notice_sent(*, round_id, supervisor_id, kind: str, period: str, sent_on: date,
                        window_end: date) -> Draft:
    """R35.1: the 告知书 of a proposed unqualified grade: reasons, basis, and the right to state and defend
    until the window's last day (the notice itself is in appraisal; its deadline is reminded separately)."""
    which = "年度考核" if kind == "annual" else "任期考核"
    return to_supervisor(
        supervisor_id, kind="defence_notice_sent", rule="R35.1", subject_type="round", subject_id=str(round_id),
        title="考核告知书",
        body=f"市司法局已于{cn_day(sent_on)}向您送达{period}{which}拟定不合格的告知书（理由、依据及陈述申辩权利）。"
             f"如需陈述、申辩，请于{cn_day(window_end)}前向市司法局提出。", urgent=True)


def commendation_issued(*, round_id, supervisor_id, kind: str) -> Draft:
    """R38.1: an excellent supervisor was commended."""
    which = "年度" if kind == "annual" else "任期"
    return to_supervisor(
        supervisor_id, kind="commendation_issued", rule="R38.1", subject_type="round", subject_id=str(round_id),
        title="表扬通知", body=f"您在{which}考核中被评为优秀，市司法局予以表扬。")


def subsidy_approved(*, line_id, supervisor_id, amount_fen: int) -> Draft:
    """R42.1: a subsidy line was approved for payment."""
    return to_supervisor(
        supervisor_id, kind="subsidy_approved", rule="R42.1", subject_type="line", subject_id=str(line_id),
        title="履职补助已批准",
        body=f"您的一笔履职补助（{amount_fen // 100}.{amount_fen % 100:02d} 元）已批准，将随发放表支付。")


def subsidy_paid(*, line_id, supervisor_id, amount_fen: int, paid_on: date) -> Draft:
    """R42.1: an approved subsidy line was paid by its monthly table."""
    return to_supervisor(
        supervisor_id, kind="subsidy_paid", rule="R42.1", subject_type="line", subject_id=str(line_id),
        title="履职补助已发放",
        body=f"您的一笔履职补助（{amount_fen // 100}.{amount_fen % 100:02d} 元）已于{cn_day(paid_on)}发放，"
             "请注意查收。")


def to_bureau(district: str | None, **values) -> list[Draft]:
    """Staff of the bureau: the city bureau's admins and, for a district's item, that district's bureau."""
    drafts = [Draft(role="bureau_admin", district=None, **values)]
    if district:
        drafts.append(Draft(role="district_bureau", district=district, **values))
    return drafts


def short_notice_consent(*, request_id, activity_type: str, district: str, office: str, starts_at: datetime,
                         reason: str) -> list[Draft]:
    """R10.2: a request with short notice waits for the bureau's consent."""
    return to_bureau(
        district, kind="short_notice_consent", rule="R10.2", subject_type="request", subject_id=str(request_id),
        title="缩短通知期限待同意",
        body=f"{office}申请{local_time(starts_at)}的{activity_types.label(activity_type)}活动缩短通知期限，理由：{reason}。请决定是否同意。",
        urgent=True)


def short_staffed(*, request_id, shortfall: dict[str, int], activity: Activity | None) -> list[Draft]:
    """R14.1: a draw could not fill every seat."""
    groups = "，".join(f"{'本区' if g == 'local' else '跨区'}缺{n}人" for g, n in sorted(shortfall.items()) if n)
    return to_bureau(
        activity.district if activity else None, kind="short_staffed", rule="R14.1", subject_type="request",
        subject_id=str(request_id), title="抽选人数不足",
        body=f"{describe(activity)}的抽选未能满额（{groups}），请重新抽选或联系检察院。", urgent=True)


def recusal_to_decide(*, request_id, supervisor_id, source: str, activity: Activity | None) -> list[Draft]:
    """R13.2: a recusal request waits for the bureau's decision (the supervisor's id, not their name)."""
    who = "检察院" if source == "procuratorate" else "当事人"
    return to_bureau(
        activity.district if activity else None, kind="recusal_to_decide", rule="R13.2", subject_type="request",
        subject_id=str(request_id), title="回避申请待决定",
        body=f"{who}就{describe(activity)}申请人民监督员（编号 {supervisor_id}）回避，请作出决定。", urgent=True)


def request_refused(*, request_id, code: str, detail: str, activity: Activity | None) -> list[Draft]:
    """R10.1: the bureau refused a request; the procuratorate office of its district is told."""
    return [Draft(role="procuratorate", district=activity.district if activity else None, kind="request_refused",
                  rule=code, subject_type="request", subject_id=str(request_id), title="抽选申请不予受理",
                  body=f"{describe(activity)}的抽选申请不予受理（{code}）：{detail}")]


def receipt_mismatch(*, request_id, failed_checks: list[str]) -> list[Draft]:
    """DRAW.md step 5: a draw receipt did not match what casework stored."""
    return [Draft(role="bureau_admin", kind="receipt_mismatch", rule=None, subject_type="request",
                  subject_id=str(request_id), title="抽选回执核验不一致",
                  body=f"抽选回执核验未通过：{', '.join(failed_checks)}。请核查该次抽选。", urgent=True)]


# --- deadlines → reminders ----------------------------------------------------------------------

def reminder_stage(due_on: date, today: date) -> Stage | None:
    """A reminder a day before and on the due day, and an overdue notice after it (each once)."""
    if due_on == today + timedelta(days=1):
        return "day_before"
    if due_on == today:
        return "due_day"
    if due_on < today:
        return "overdue"
    return None


def reminder_key(service: str, item: dict, stage: Stage) -> str:
    """Idempotent on rule + subject + due day + stage (the audience is appended per recipient)."""
    return f"deadline:{service}:{item['rule']}:{item['kind']}:{item['subject_type']}:{item['subject_id']}:" \
           f"{item['due_on']}:{stage}"


def supervisor_of(item: dict) -> str | None:
    """The supervisor a deadline item is about, when its subject names one: a supervisor, or an appraisal
    participant `<round id>/<supervisor id>` (R35.1: the 告知书's defence window is the person's own); None
    otherwise (a supervisor role on an item that names no person reaches nobody)."""
    subject = str(item["subject_id"])
    if item["subject_type"] == "supervisor":
        candidate = subject
    elif item["subject_type"] == "participant" and subject.count("/") == 1:
        candidate = subject.split("/")[1]
    else:
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None


def reminders(service: str, item: dict, stage: Stage) -> list[Draft]:
    """One message per role that acts (the supervisor themself when a supervisor acts on their own item)."""
    title = f"【{STAGE_LABELS[stage]}】{item['title']}"
    body = f"{item['title']}（{item['rule']}），到期日 {item['due_on']}"
    body += f"，{item['district']}。" if item.get("district") else "。"
    kind: Kind = f"deadline_{stage}"  # type: ignore[assignment]
    common = dict(kind=kind, rule=item["rule"], title=title, body=body, subject_type=item["subject_type"],
                  subject_id=str(item["subject_id"]), urgent=stage == "overdue")
    drafts = []
    for role in item["roles"]:
        if role == "supervisor":
            supervisor_id = supervisor_of(item)
            if supervisor_id is not None:
                drafts.append(to_supervisor(supervisor_id, **common))
            continue
        scoped = role in ("district_bureau", "procuratorate")
        drafts.append(Draft(role=role, district=item.get("district") if scoped else None, **common))
    return drafts


# --- delivery -----------------------------------------------------------------------------------

def in_quiet_hours(moment: datetime, start: time, end: time) -> bool:
    local = moment.astimezone(SHANGHAI).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 21:00–08:00


def quiet_until(moment: datetime, start: time, end: time) -> datetime | None:
    """When quiet hours (Asia/Shanghai) that hold `moment` end; None outside them."""
    if not in_quiet_hours(moment, start, end):
        return None
    local = moment.astimezone(SHANGHAI)
    end_today = datetime.combine(local.date(), end, tzinfo=SHANGHAI)
    return end_today if end_today > local else end_today + timedelta(days=1)


def send_after(moment: datetime, *, urgent: bool, start: time, end: time) -> datetime | None:
    """None: send now. Else the moment a non-urgent SMS waits for (the end of quiet hours)."""
    return None if urgent else quiet_until(moment, start, end)


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """The wait after the `attempts`-th failed attempt: base, 2·base, 4·base, … at most cap."""
    return min(cap, base * 2 ** max(0, attempts - 1))


def sms_text(text: str, limit: int = 300) -> str:
    """A template parameter: no full id number (R3.1), at most `limit` characters."""
    text = redact_id_numbers(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

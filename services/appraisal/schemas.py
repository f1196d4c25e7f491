"""Request and response models of the appraisal API."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Grade = Literal["excellent", "qualified", "basically_qualified", "unqualified"]
State = Literal["opened", "self_summaries", "reviewed", "district_proposed", "bureau_proposed", "public_notice",
                "finalized"]
Text2000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Day = Annotated[date, Field(ge=date(2024, 1, 1), le=date(2999, 12, 31))]
TermDay = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2999, 12, 31))]  # a term may have begun before 2024
Criterion = Literal["political_quality", "ethics", "activities", "opinion_quality", "training"]


class ConductCreate(BaseModel):
    """R28.1(3)(4), R6.1, R32.1: a record entered by the bureau."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["law_abiding", "ethics", "reminder", "uncorrected", "other_activity", "late_change_report"]
    text: Text2000
    occurred_on: Day
    ground: int | None = Field(default=None, ge=1, le=5,
                               description="提醒教育或“经提醒教育仍未改正”记录针对的第三十二条情形（1–5）")


class AppraisalOfRead(BaseModel):
    round_id: uuid.UUID
    kind: str
    year: int | None
    term_start: date | None
    term_end: date | None
    state: str
    state_label: str
    final_grade: str | None = Field(description="确定的等次（考核确定前为空）")
    final_grade_label: str | None
    result_version: int | None
    defence_sent_on: date | None = Field(description="告知书送达日（R35.1；未发出为空）")


class LedgerEntryRead(BaseModel):
    id: int
    kind: str
    subkind: str | None
    occurred_on: date
    ref_id: uuid.UUID | None
    adopted: bool | None
    hours: float | None
    attended: bool | None
    ground: int | None
    details: dict[str, Any]
    recorded_by: str | None
    kind_label: str = Field(description="类别（中文）")
    subkind_label: str = Field(description="具体项目（中文：活动类型、培训类别、记录类别）")


class FiguresRead(BaseModel):
    activities: int
    adopted: int
    training_hours: float
    trainings_attended: int
    attended_annual_training: bool
    reminders: int
    conduct_records: int
    other_activities: int
    late_change_reports: int
    absences: int = 0


class LedgerRead(BaseModel):
    supervisor_id: uuid.UUID
    year: int
    name: str | None
    district: str | None
    figures: FiguresRead
    entries: list[LedgerEntryRead]


class LedgerSummaryRead(BaseModel):
    supervisor_id: uuid.UUID
    name: str | None = None
    district: str | None = None
    figures: FiguresRead


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["annual", "term"] = "annual"
    year: int | None = Field(default=None, ge=2024, le=2999)
    term_start: TermDay | None = None
    term_end: TermDay | None = None
    supervisor_ids: list[uuid.UUID] | None = Field(default=None, max_length=5000,
                                                   description="参加考核人员；缺省为全部在任人民监督员")


class StepIn(BaseModel):
    """A step forward; the public notice starts on the server's date (no client date is accepted, R34.1)."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    notice_days: int | None = Field(default=None, ge=1, le=30, description="公示期（工作日，不少于规定天数）")


class BackIn(BaseModel):
    """R30.1/R34.1: send the round back one step (before finalizing), with a reason."""

    model_config = ConfigDict(extra="forbid")
    reason: Text2000


class JustificationIn(BaseModel):
    """R30.1: why more than floor(15 %) of the appraised are (to be) excellent."""

    model_config = ConfigDict(extra="forbid")
    text: Text2000
    excellent_count: int | None = Field(default=None, ge=1, le=5000,
                                        description="说明覆盖的优秀人数（缺省为当前拟定人数）")


class ConsultationIn(BaseModel):
    """R34.1(3): the district bureau consulted its procuratorate."""

    model_config = ConfigDict(extra="forbid")
    note: Text2000


class ConsultationRead(BaseModel):
    district: str
    note: str
    recorded_by: str
    recorded_at: datetime


class HistoryRead(BaseModel):
    id: int
    supervisor_id: uuid.UUID | None
    action: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    details: dict[str, Any]
    actor: str
    at: datetime


class ResultRead(BaseModel):
    version: int
    grade: str
    grounds: list[int]
    decided_by: str
    decided_at: datetime
    reason: str | None


class StepRead(BaseModel):
    state: str
    actor: str
    at: datetime
    note: str | None


class RoundRead(BaseModel):
    id: uuid.UUID
    kind: str
    year: int | None
    term_start: date | None
    term_end: date | None
    state: str
    consultation_note: str | None
    notice_text: str | None
    notice_start: date | None
    notice_end: date | None
    notice_number: str | None = Field(None, description="公示文号（公示开始时编号，R34.1(5)）")
    finalized_on: date | None
    entered_by: date | None
    entered_done_at: datetime | None
    reported_by: date | None
    reported_done_at: datetime | None
    created_by: str
    steps: list[StepRead] = []
    appraised: int = 0
    # R30.1: the flag and its justified path
    excellent_count: int = 0
    excellent_allowed: int = 0
    cap_exceeded: bool = False
    cap_justification: str | None = None
    cap_justified_count: int | None = None
    cap_justified_by: str | None = None
    cap_approved_by: str | None = None
    consultations: list[ConsultationRead] = []


class ParticipantRead(BaseModel):
    supervisor_id: uuid.UUID
    name: str | None
    district: str | None
    self_summary: str | None
    procuratorate_opinion: str | None
    community_opinion: str | None
    district_grade: str | None
    bureau_grade: str | None
    grounds: list[int]
    defence_sent_on: date | None
    defence_window_end: date | None
    defence_number: str | None = Field(None, description="告知书文号（送达时编号，R35.1）")
    statement: str | None
    statement_final: bool
    statement_by: str | None = None
    statement_received_on: date | None = None
    defence_notice_text: str | None = None
    excellent_criteria: dict[str, Any] | None = None
    final_grade: str | None
    result_version: int | None = None


class SummaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text2000


class OpinionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["procuratorate", "employer_community"]
    text: Text2000


class CriterionIn(BaseModel):
    """R31.1: one condition of an excellent grade: met, and the evidence noted."""

    model_config = ConfigDict(extra="forbid")
    met: bool
    evidence: Text500


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grade: Grade
    grounds: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list, max_length=5,
                                                             description="不合格情形（R32.1）")
    excellent_criteria: dict[Criterion, CriterionIn] | None = Field(
        default=None, description="年度优秀的五项条件及依据（R31.1）")


class CorrectionIn(GradeIn):
    """A grade corrected before finalizing, or a finalized result corrected: always with a reason."""

    reason: Text2000


class GradeRead(BaseModel):
    supervisor_id: uuid.UUID
    grade: str
    excellent_count: int = 0  # R30.1: flagged while grades are proposed
    excellent_allowed: int = 0
    cap_exceeded: bool = False
    state: str | None = None
    result_version: int | None = None


class DefenceNoticeIn(BaseModel):
    """R35.1: the notice is sent on the server's date (no client date is accepted)."""

    model_config = ConfigDict(extra="forbid")
    reasons: Text2000
    basis: Text2000
    window_days: int | None = Field(default=None, ge=1, le=60, description="陈述申辩期（自然日，自次日起算）")


class DocumentRead(BaseModel):
    """The data of a document of record (the 告知书 of R35.1): the documents service lays it out."""

    title: str
    addressee: str
    paragraphs: list[str]
    issuer: str
    date: date
    date_zh: str
    window_end: date


class DefenceNoticeRead(BaseModel):
    supervisor_id: uuid.UUID
    sent_on: date
    window_end: date
    document: DocumentRead
    text: str


class StatementIn(BaseModel):
    """R35.1: by the supervisor, or by the bureau for a statement received on paper (`received_on`)."""

    model_config = ConfigDict(extra="forbid")
    text: Text2000
    final: bool = True
    received_on: Day | None = Field(default=None, description="书面陈述申辩的收到日期（司法局代为录入时必填）")


class PastResult(BaseModel):
    year: int
    grade: str


class ProposalRead(BaseModel):
    supervisor_id: uuid.UUID
    name: str | None
    district: str | None
    past_results: list[PastResult] = []
    figures: FiguresRead | None = None
    proposed_grade: str | None = None
    excellent_candidate: bool | None = None
    score: float | None = None
    annual_excellent: int | None = None
    term_excellent_eligible: bool | None = None
    term_excellent_automatic: bool | None = None
    excellent_checklist: dict[str, str] | None = None  # R31.1: what the ledger says for each condition
    unqualified_grounds_on_record: list[int]


class CandidatesRead(BaseModel):
    appraised: int
    excellent_allowed: int
    candidates: list[ProposalRead]


class NoticeRead(BaseModel):
    id: int
    supervisor_id: uuid.UUID | None
    kind: str
    recipient: str
    text: str
    number: str | None = Field(None, description="文号（确定考核结果时编号）")
    created_at: datetime


class OverdueRead(BaseModel):
    round_id: uuid.UUID
    period: str
    deadline: Literal["entered", "reported"]
    due: date


class PendingRead(BaseModel):
    """R34.1: the step a round waits for."""

    action: str = Field(description="下一步：self_summaries … finalized；确定后为 entered / reported（R34.1(6)）")
    label: str
    roles: list[str] = Field(description="参与办理的角色（推进由市司法局办理）")
    not_before: date | None = Field(default=None, description="最早可办理的日期（如公示期满次日）")


class RoundListItem(BaseModel):
    """A round in the work list: its state, since when, who moved it there, and what it waits for."""

    id: uuid.UUID
    kind: str
    year: int | None
    term_start: date | None
    term_end: date | None
    period: str
    state: str
    state_label: str
    since: datetime = Field(description="进入当前步骤的时间")
    since_by: str | None = Field(description="推进到当前步骤的人员")
    pending: PendingRead | None = Field(description="待办步骤；全部办结为空")
    notice_start: date | None
    notice_end: date | None
    finalized_on: date | None
    entered_by: date | None
    reported_by: date | None
    appraised: int
    appraised_in_district: int | None = Field(description="按区市筛选时：该区市参加考核人数")
    created_by: str
    created_at: datetime


class GradeCount(BaseModel):
    grade: str
    label: str
    count: int


class GradeBreakdown(BaseModel):
    total: int
    grades: dict[str, int]


class YearGrades(GradeBreakdown):
    year: int


class DistrictGrades(GradeBreakdown):
    district: str | None


class ResultCell(BaseModel):
    year: int
    district: str | None
    grade: str
    count: int


class ResultStatisticsRead(BaseModel):
    """R30.1/R37.1: finalized results (current versions), counted per year, grade and district."""

    year: int | None
    kind: str
    district: str | None
    total: int
    by_grade: list[GradeCount]
    by_year: list[YearGrades]
    by_district: list[DistrictGrades]
    rows: list[ResultCell]

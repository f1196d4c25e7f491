"""Request and response models of the appraisal API."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Grade = Literal["excellent", "qualified", "basically_qualified", "unqualified"]
State = Literal["opened", "self_summaries", "reviewed", "district_proposed", "bureau_proposed", "public_notice",
                "finalized"]
Text2000 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Day = Annotated[date, Field(ge=date(2024, 1, 1), le=date(2999, 12, 31))]


class ConductCreate(BaseModel):
    """R28.1(3)(4), R6.1, R32.1: a record entered by the bureau."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["law_abiding", "ethics", "reminder", "other_activity", "late_change_report"]
    text: Text2000
    occurred_on: Day
    ground: int | None = Field(default=None, ge=1, le=5, description="提醒教育针对的第三十二条情形（1–5）")


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
    figures: FiguresRead


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["annual", "term"] = "annual"
    year: int | None = Field(default=None, ge=2024, le=2999)
    term_start: Day | None = None
    term_end: Day | None = None
    supervisor_ids: list[uuid.UUID] | None = Field(default=None, max_length=5000,
                                                   description="参加考核人员；缺省为全部在任人民监督员")


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    notice_start: Day | None = Field(default=None, description="公示开始日期（公示步骤）")
    notice_days: int | None = Field(default=None, ge=1, le=30, description="公示期（工作日）")


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
    finalized_on: date | None
    entered_by: date | None
    entered_done_at: datetime | None
    reported_by: date | None
    reported_done_at: datetime | None
    created_by: str
    steps: list[StepRead] = []
    appraised: int = 0


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
    statement: str | None
    statement_final: bool
    final_grade: str | None


class SummaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text2000


class OpinionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["procuratorate", "employer_community"]
    text: Text2000


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grade: Grade
    grounds: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list, max_length=5,
                                                             description="不合格情形（R32.1）")


class GradeRead(BaseModel):
    supervisor_id: uuid.UUID
    grade: str


class DefenceNoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reasons: Text2000
    basis: Text2000
    sent_on: Day
    window_days: int | None = Field(default=None, ge=1, le=60, description="陈述申辩期（自然日）")


class DefenceNoticeRead(BaseModel):
    supervisor_id: uuid.UUID
    sent_on: date
    window_end: date


class StatementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text2000
    final: bool = True


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
    created_at: datetime


class OverdueRead(BaseModel):
    round_id: uuid.UUID
    period: str
    deadline: Literal["entered", "reported"]
    due: date

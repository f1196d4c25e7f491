"""Request and response models of the registry API."""

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.registry.rules import DismissalGround, ExclusionGround, TrainingFormat, TrainingKind

Gender = Literal["male", "female"]
ShortText = Field(min_length=1, max_length=200)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SupervisorCreate(_In):
    """A candidate record (appointment is a separate step: POST /supervisors/{id}/appointments)."""

    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=1, max_length=40, description="18位公民身份号码（GB 11643）")
    phone: str = Field(min_length=1, max_length=30, description="手机号码")
    gender: Gender | None = Field(default=None, description="缺省时由身份号码推出；给出时须与之一致")
    birth_date: date | None = Field(default=None, description="缺省时由身份号码推出；给出时须与之一致")
    district: str = Field(min_length=1, max_length=50)
    employer: str = ShortText
    recommending_body: str = ShortText
    specialties: list[str] = Field(default_factory=list, max_length=10)


class SupervisorUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, min_length=1, max_length=30)
    district: str | None = Field(default=None, min_length=1, max_length=50)
    employer: str | None = Field(default=None, min_length=1, max_length=200)
    recommending_body: str | None = Field(default=None, min_length=1, max_length=200)
    specialties: list[str] | None = Field(default=None, max_length=10)


class SupervisorRead(BaseModel):
    id: uuid.UUID
    name: str
    gender: Gender
    birth_date: date | None = Field(
        default=None,
        description="R3.1：脱敏视图不显示（身份号码第7–14位）；仅 bureau_admin 以 unmasked=true 读取时给出（记入审计）")
    id_number: str = Field(
        description="默认脱敏（出生日期一并隐去）；bureau_admin 以 unmasked=true 读取时为明文（记入审计）")
    phone: str
    district: str
    employer: str
    recommending_body: str
    specialties: list[str]
    status: str
    decision_no: str | None
    decision_date: date | None
    term_start: date | None
    term_end: date | None
    certificate_no: str | None
    work_card_no: str | None
    initial_training_due: date | None
    initial_passed_on: date | None
    training_state: str
    eligible: bool
    eligibility_reasons: list[str]
    excluded_ground: str | None
    permanent_ban: bool
    created_at: datetime
    updated_at: datetime


class SupervisorListItem(BaseModel):
    id: uuid.UUID
    name: str
    gender: Gender
    district: str
    employer: str
    specialties: list[str]
    status: str
    phone: str
    term_start: date | None
    term_end: date | None
    certificate_no: str | None
    training_state: str
    eligible: bool


class EligibleSupervisor(BaseModel):
    """What the procuratorate may see: id, name, specialties and district of eligible supervisors."""

    id: uuid.UUID
    name: str
    district: str
    specialties: list[str]


class Contact(BaseModel):
    id: uuid.UUID
    name: str
    phone: str


class ContactsQuery(_In):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=200, description="人民监督员 id，至多 200 个")


class MaskedContact(BaseModel):
    id: uuid.UUID
    name: str
    district: str
    phone_masked: str


class MaskedContacts(BaseModel):
    items: list[MaskedContact]
    missing: list[uuid.UUID] = Field(description="名册中没有的 id")


class AppointmentCreate(_In):
    decision_no: str = Field(min_length=1, max_length=100, description="任命决定文号")
    decision_date: date
    term_start: date | None = Field(default=None, description="缺省为决定日期")
    certificate_no: str | None = Field(default=None, min_length=1, max_length=50, description="缺省自动编号")
    work_card_no: str | None = Field(default=None, min_length=1, max_length=50, description="缺省自动编号")
    level: Literal["provincial", "city"] | None = Field(
        default=None, description="N-TERM 检察院层级（一人只能担任一个层级）；缺省为本局的层级")


class AppointmentRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    decision_no: str
    decision_date: date
    term_start: date
    term_end: date
    certificate_no: str
    work_card_no: str
    appointed_by: str
    created_at: datetime
    level: str = "city"
    ended_on: date | None = None
    end_reason: str | None = None


ChangeField = Literal["name", "district", "employer", "recommending_body", "specialties"]


class ChangeReportCreate(_In):
    changes: dict[ChangeField, str | list[str]] = Field(default_factory=dict, description="变更后的值")
    description: str = Field(default="", max_length=1000, description="其他变更事项的说明")
    changed_on: date
    reported_on: date | None = Field(
        default=None, description="R6.1：报告日期为服务器收到之日，不能填写其他日期（填写其他日期将被拒绝）")


class ChangeReportRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    changes: dict
    description: str
    changed_on: date
    reported_on: date
    late: bool
    status: str
    filed_by: str
    decided_by: str | None
    decided_at: datetime | None


class ResignationCreate(_In):
    reason_kind: Literal["job_change", "health", "other"]
    reason: str = Field(min_length=1, max_length=1000)
    applied_on: date | None = None


class ResignationDecision(_In):
    approve: bool
    note: str = Field(default="", max_length=1000)


class ResignationRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    reason_kind: str
    reason: str
    applied_on: date
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class DismissalCreate(_In):
    ground: DismissalGround = Field(description="R8.1 免除资格情形 1–6")
    evidence_note: str = Field(min_length=1, max_length=2000, description="证据说明")
    appraisal_round_id: uuid.UUID | None = Field(
        default=None, description="R8.1 第（五）项必填：所依据的年度考核轮次（须已收到该人员“不合格”的考核结果）")


class CaseDecision(_In):
    evidence_note: str | None = Field(default=None, min_length=1, max_length=2000)


class NoticeRead(BaseModel):
    """R9.1: a written notice (a document: title, recipient, text, legal basis, issuer, date)."""

    recipient_kind: str
    recipient: str
    text: str
    title: str | None = None
    basis: str | None = None
    issued_by: str | None = None
    issued_on: date | None = None
    number: str | None = Field(None, description="文号（如 威司免〔2026〕3号），决定时编号")


class DismissalRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    ground: int
    ground_label: str
    evidence_note: str
    status: str
    source: str
    appraisal_round_id: uuid.UUID | None
    permanent_ban: bool
    notices: list[NoticeRead] | None
    announcement: str | None
    announcement_number: str | None = Field(None, description="公告文号（如 威司公告〔2026〕1号），决定时编号")
    recall: dict | None
    opened_by: str
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime


class ExclusionCreate(_In):
    ground: ExclusionGround
    note: str = Field(min_length=1, max_length=2000)


class ExclusionLift(_In):
    reason: str = Field(min_length=1, max_length=2000, description="解除理由")


class ExclusionRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    ground: str
    ground_label: str
    note: str
    recorded_by: str
    recorded_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None


class SpecialtyCreate(_In):
    name: str = Field(min_length=1, max_length=30)


class SpecialtyRead(BaseModel):
    name: str
    active: bool


class TrainingSessionCreate(_In):
    kind: TrainingKind
    format: TrainingFormat = Field(description="R24.1 培训形式")
    title: str = Field(min_length=1, max_length=200)
    held_on: date
    hours: float = Field(gt=0, le=100)


class TrainingSessionRead(BaseModel):
    id: uuid.UUID
    kind: str
    format: str
    title: str
    held_on: date
    hours: float


class SessionRecordRead(BaseModel):
    supervisor_id: uuid.UUID
    name: str
    district: str
    attended: bool
    exam_passed: bool | None
    recorded_by: str | None


class TrainingSessionDetail(TrainingSessionRead):
    results: list[SessionRecordRead] = Field(description="已记录的出勤与考试结果（区市司法局仅见本辖区人员，R2.1）")


class TrainingResult(_In):
    supervisor_id: uuid.UUID
    attended: bool
    exam_passed: bool | None = None


class TrainingResults(_In):
    results: list[TrainingResult] = Field(min_length=1, max_length=500)


class TrainingRecordRead(BaseModel):
    session_id: uuid.UUID
    supervisor_id: uuid.UUID
    kind: str
    format: str
    held_on: date
    hours: float
    attended: bool
    exam_passed: bool | None


class TrainingDue(BaseModel):
    id: uuid.UUID
    name: str
    district: str
    decision_date: date | None
    initial_training_due: date | None

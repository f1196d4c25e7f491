"""Request and response bodies of the casework API."""

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.casework.rules import HEARING_MATTERS, HearingMatter, RequestStatus
from shared.activity_types import ACTIVITY_TYPES
from shared.lead_time import ActivityMoment


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Bounds that fit each field's purpose: one line (a name, a case number, a place) has no control characters;
# a text (summary, opinion, reason) may have line breaks and tabs but no other control characters.
LINE = r"^[^\x00-\x1f\x7f]*$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _not_blank(value: str) -> str:
    """Required words are not only spaces (the value itself is kept verbatim)."""
    if not value.strip():
        raise ValueError("不能只有空白字符")
    return value


NotBlank = AfterValidator(_not_blank)
CaseRef = Annotated[str, Field(min_length=1, max_length=100, pattern=LINE, description="案号"), NotBlank]
DistrictName = Annotated[str, Field(min_length=1, max_length=50, pattern=LINE), NotBlank]
Place = Annotated[str, Field(min_length=1, max_length=200, pattern=LINE), NotBlank]
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=LINE), NotBlank]
PersonName = Annotated[str, Field(min_length=1, max_length=100, pattern=LINE), NotBlank]
PartyName = Annotated[str, Field(min_length=1, max_length=100, pattern=LINE,
                                 description="当事人或利害关系人名称（不超过100字）"), NotBlank]
Specialty = Annotated[str, Field(min_length=1, max_length=30, pattern=LINE,
                                 description="R11.2：专业领域名称（市司法局专业领域目录，不超过30字）"), NotBlank]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=TEXT), NotBlank]
Ground = Annotated[str, Field(min_length=1, max_length=1000, pattern=TEXT), NotBlank]
AdoptionReason = Annotated[str, Field(min_length=1, max_length=2000, pattern=TEXT), NotBlank]


class ActivityCreate(Strict):
    case_ref: CaseRef
    activity_type: str = Field(min_length=1, max_length=60, description=f"N-ACT：{'、'.join(ACTIVITY_TYPES)}")
    other_description: str | None = Field(default=None, max_length=500, pattern=TEXT,
                                          description="类型为 other 时必填")
    hearing_matter: HearingMatter | None = Field(
        default=None, description="N-MUST：公开听证/公开审查的事项；" + "、".join(
            f"{k}={v}" for k, v in HEARING_MATTERS.items()) + "（前五项应当邀请人民监督员）")
    mandatory_invitation: bool | None = Field(
        default=None, description="N-MUST：应当邀请人民监督员；不填则依事项确定，法定应当邀请的事项不能填 false")
    office: str | None = Field(default=None, min_length=1, max_length=100, pattern=LINE)
    district: DistrictName
    starts_at: ActivityMoment = Field(description="带时区；2000-01-01 至 2100-12-31（UTC）")
    ends_at: ActivityMoment
    place: Place
    summary: str = Field(default="", max_length=5000, pattern=TEXT, description="办案活动简要情况")


class ActivityCancellation(BaseModel):
    reason: str
    by: str
    at: datetime


class ActivityRead(BaseModel):
    id: uuid.UUID
    case_ref: str
    activity_type: str
    activity_type_label: str
    other_description: str | None
    hearing_matter: str | None = None
    hearing_matter_label: str | None = None
    mandatory_invitation: bool
    office: str
    district: str
    starts_at: datetime
    ends_at: datetime
    place: str
    summary: str
    status: Literal["open", "held", "cancelled"]
    created_by: str
    created_at: datetime
    held_at: datetime | None
    cancellation: ActivityCancellation | None = None


class SummaryIn(Strict):
    summary: str = Field(max_length=5000, pattern=TEXT)


class ShortNoticeIn(Strict):
    reason: Reason = Field(description="R10.2：需要缩短通知期限的特殊情形")


class SupervisionRequestCreate(Strict):
    """What the procuratorate asks for; the seat split, balance mode and the time of the request are not its to set."""

    seats: int = Field(ge=1, le=20)
    specialty: Specialty | None = None
    conflict_parties: list[PartyName] = Field(
        default_factory=list, max_length=50, description="R13.1：当事人等名称，至多50个，每个不超过100字")
    short_notice: ShortNoticeIn | None = Field(
        default=None, description="R10.2：不足五个工作日（至少三个）时申请特殊情形，须经市司法局同意")


class CancelIn(Strict):
    reason: Reason = Field(description="撤回或取消理由")


class RescheduleIn(Strict):
    """A new time: the live request is cancelled and a new one (same seats, specialty, parties) asked for it."""

    starts_at: ActivityMoment = Field(description="新的开始时间（带时区）")
    ends_at: ActivityMoment
    place: Place | None = None
    reason: Reason = Field(description="改期理由")
    short_notice: ShortNoticeIn | None = Field(
        default=None, description="R10.2：新时间不足五个工作日（至少三个）时申请特殊情形")


class RosterMember(BaseModel):
    supervisor_id: uuid.UUID
    name: str
    phone: str
    district: str
    group: str
    draw_order: int
    status: str
    confirmed_at: datetime
    released_at: datetime | None
    release_reason: str | None
    replaced_by: uuid.UUID | None
    absent_at: datetime | None = None
    absence_reason: str | None = None


class Refusal(BaseModel):
    code: str | None
    detail: str | None
    earliest_allowed_date: date | None


class RecusalRead(BaseModel):
    recusal_id: uuid.UUID
    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    source: str
    ground: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decision_reason: str | None
    decided_at: datetime | None


class Staffing(BaseModel):
    confirmed: int
    seats: int


class Acceptance(BaseModel):
    """DRAW.md protocol step 2 as received from the bureau (SupervisionAccepted)."""

    accepted_at: datetime
    bureau_commitment: str
    snapshot_hash: str
    params_hash: str
    beacon: dict[str, Any] | None
    short_notice_consent: dict[str, Any] | None


class ReceiptCheck(BaseModel):
    """DRAW.md protocol step 5: casework's check of one draw round's receipt."""

    draw_id: uuid.UUID
    round: int
    status: Literal["pending", "ok", "mismatch"]
    failed_checks: list[str]
    checked_at: datetime | None


class Cancellation(BaseModel):
    reason: str
    by: str
    at: datetime


class ShortNoticeRead(BaseModel):
    reason: str


class SupervisionRequestRead(BaseModel):
    request_id: uuid.UUID
    activity_id: uuid.UUID
    status: RequestStatus
    seats: int
    specialty: str | None
    requested_at: datetime
    short_notice: ShortNoticeRead | None
    calendar_provisional: bool
    procuratorate_commitment: str | None
    acceptance: Acceptance | None
    staffing: Staffing
    shortfall: dict[str, int]
    refusal: Refusal | None
    cancellation: Cancellation | None
    rescheduled_from: uuid.UUID | None = Field(default=None, description="改期：本申请所取代的原申请")
    superseded_by: uuid.UUID | None = Field(default=None, description="改期：取代本申请的新申请")
    receipt_hash: str | None
    contact_log_head: str | None
    receipt_checks: list[ReceiptCheck]
    receipt_mismatch: bool = Field(description="某轮抽选回执与本院所收承诺或随机数不符（DRAW.md 第5步）")
    roster: list[RosterMember]
    released: list[RosterMember]
    absent: list[RosterMember] = []
    recusals: list[RecusalRead]


class RecusalCreate(Strict):
    supervisor_id: uuid.UUID
    source: Literal["procuratorate", "party"]
    ground: Ground


class MaterialCreate(Strict):
    title: Title
    text: str | None = Field(default=None, max_length=200_000)
    content_base64: str | None = Field(default=None, max_length=8_000_000)
    content_type: str = Field(default="text/plain; charset=utf-8", max_length=100,
                              pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+(; ?[A-Za-z0-9-]+=[A-Za-z0-9.-]+)?$")


class MaterialRead(BaseModel):
    id: uuid.UUID
    activity_id: uuid.UUID
    title: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class OpinionIn(Strict):
    text: str = Field(min_length=1, max_length=10_000, pattern=TEXT, description="监督意见原文（原样保存，不作删改）")


class OpinionRead(BaseModel):
    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    text: str
    source: Literal["supervisor", "procuratorate_record"] | None = Field(
        default=None, description="R16.1：supervisor=本人书写；procuratorate_record=检察院记录的口头意见")
    version: int = 1
    recorded_by: str
    recorded_at: datetime
    frozen: bool


class OpinionVersionRead(BaseModel):
    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    version: int
    text: str
    source: Literal["supervisor", "procuratorate_record"] | None
    recorded_by: str
    recorded_at: datetime


class SignIn(Strict):
    method: Literal["on_site_token"] = "on_site_token"
    content_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="所见内容的哈希")
    signature_image_base64: str | None = Field(default=None, max_length=1_000_000, description="手写签名 PNG")


class SignatureRead(BaseModel):
    supervisor_id: uuid.UUID
    signed_at: datetime
    method: str
    content_hash: str
    signature_hash: str
    has_image: bool


class AdoptionAnnexItem(BaseModel):
    """R18.1: an adoption decision shown beside the signed content (a dated annex, never an edit of it)."""

    supervisor_id: uuid.UUID
    name: str
    adopted: bool
    reason: str
    decided_by: str
    decided_at: datetime
    at_signing: Literal["adopted", "not_adopted", "pending"] | None = Field(
        description="签字内容中的采纳情况（草稿为 null）")


class FormRead(BaseModel):
    form_id: uuid.UUID | None
    activity_id: uuid.UUID
    status: Literal["draft", "signing", "signed"]
    content: dict[str, Any]
    content_hash: str
    frozen_at: datetime | None
    completed_at: datetime | None
    number: str | None = Field(None, description="反馈表编号（全部签字确认时编号，如 威检监反〔2026〕3号；此前为空）")
    signatures: list[SignatureRead]
    adoption_annex: list[AdoptionAnnexItem] = []


class AdoptionIn(Strict):
    adopted: bool
    reason: AdoptionReason


class AdoptionRead(BaseModel):
    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    adopted: bool
    reason: str
    decided_by: str
    notified_at: datetime


class ObserverCreate(Strict):
    kind: Literal["bureau_staff", "shadowing_supervisor"]
    name: PersonName
    organization: str | None = Field(default=None, max_length=200, pattern=LINE)
    supervisor_id: uuid.UUID | None = None


class ObserverRead(BaseModel):
    id: uuid.UUID
    activity_id: uuid.UUID
    kind: str
    name: str
    organization: str | None
    supervisor_id: uuid.UUID | None
    paid: bool
    recorded_by: str
    recorded_at: datetime


class ParticipationReportIn(Strict):
    note: str = Field(default="", max_length=2000, pattern=TEXT)


class ParticipationReportRead(BaseModel):
    activity_id: uuid.UUID
    due_on: date
    reported_at: datetime
    on_time: bool
    provisional: bool


class OverdueReport(BaseModel):
    activity_id: uuid.UUID
    case_ref: str
    office: str
    district: str
    ended_on: date
    due_on: date
    reported_on: date | None
    provisional: bool


class TransmittalCreate(Strict):
    month: str | None = Field(default=None, pattern=r"^20\d{2}-(0[1-9]|1[0-2])$",
                              description="月份，如 2026-10；默认上月")
    office: str | None = Field(default=None, min_length=1, max_length=100, pattern=LINE)


class TransmittalRead(BaseModel):
    id: uuid.UUID
    office: str
    month: str
    due_on: date
    form_ids: list[str]
    signatures: int = Field(default=0, description="R20.2：本次转送的签字数（之前转送过的签字不再重复）")
    carried_over: list[str] = Field(default=[], description="R20.2：上月转送后才签字、本次补送的反馈表")
    sent_by: str
    sent_at: datetime
    on_time: bool


class OverdueTransmittal(BaseModel):
    office: str
    month: str
    due_on: date
    forms: int
    sent_on: date | None


class RescheduleRead(BaseModel):
    activity: ActivityRead
    previous_starts_at: datetime
    previous_ends_at: datetime
    reason: str
    cancelled_request_id: uuid.UUID | None
    request: SupervisionRequestRead | None

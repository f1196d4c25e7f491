"""Request and response bodies of the casework API."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.casework.rules import RequestStatus
from shared.activity_types import ACTIVITY_TYPES
from shared.lead_time import ActivityMoment


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityCreate(Strict):
    case_ref: str = Field(min_length=1, max_length=200, description="案号")
    activity_type: str = Field(min_length=1, max_length=60, description=f"N-ACT：{'、'.join(ACTIVITY_TYPES)}")
    other_description: str | None = Field(default=None, max_length=500, description="类型为 other 时必填")
    mandatory_invitation: bool = Field(default=False, description="N-MUST：应当邀请人民监督员")
    office: str | None = Field(default=None, min_length=1, max_length=100)
    district: str = Field(min_length=1, max_length=50)
    starts_at: ActivityMoment = Field(description="带时区；2000-01-01 至 2100-12-31（UTC）")
    ends_at: ActivityMoment
    place: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=5000, description="办案活动简要情况")


class ActivityRead(BaseModel):
    id: uuid.UUID
    case_ref: str
    activity_type: str
    activity_type_label: str
    other_description: str | None
    mandatory_invitation: bool
    office: str
    district: str
    starts_at: datetime
    ends_at: datetime
    place: str
    summary: str
    status: str
    created_by: str
    created_at: datetime
    held_at: datetime | None


class SummaryIn(Strict):
    summary: str = Field(max_length=5000)


class ShortNoticeIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="R10.2：需要缩短通知期限的特殊情形")


class SupervisionRequestCreate(Strict):
    """What the procuratorate asks for; the seat split, balance mode and the time of the request are not its to set."""

    seats: int = Field(ge=1, le=20)
    specialty: str | None = Field(default=None, min_length=1, max_length=60)
    conflict_parties: list[str] = Field(default_factory=list, max_length=50)
    short_notice: ShortNoticeIn | None = Field(
        default=None, description="R10.2：不足五个工作日（至少三个）时申请特殊情形，须经市司法局同意")


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="撤回理由")


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
    ground: str = Field(min_length=1, max_length=1000)


class MaterialCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
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
    text: str = Field(min_length=1, max_length=20_000, description="监督意见原文")


class OpinionRead(BaseModel):
    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    text: str
    recorded_by: str
    recorded_at: datetime
    frozen: bool


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


class FormRead(BaseModel):
    form_id: uuid.UUID | None
    activity_id: uuid.UUID
    status: Literal["draft", "signing", "signed"]
    content: dict[str, Any]
    content_hash: str
    frozen_at: datetime | None
    completed_at: datetime | None
    signatures: list[SignatureRead]


class AdoptionIn(Strict):
    adopted: bool
    reason: str = Field(min_length=1, max_length=5000)


class AdoptionRead(BaseModel):
    activity_id: uuid.UUID
    supervisor_id: uuid.UUID
    adopted: bool
    reason: str
    decided_by: str
    notified_at: datetime


class ObserverCreate(Strict):
    kind: Literal["bureau_staff", "shadowing_supervisor"]
    name: str = Field(min_length=1, max_length=100)
    organization: str | None = Field(default=None, max_length=200)
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
    note: str = Field(default="", max_length=5000)


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
    office: str | None = Field(default=None, min_length=1, max_length=100)


class TransmittalRead(BaseModel):
    id: uuid.UUID
    office: str
    month: str
    due_on: date
    form_ids: list[str]
    sent_by: str
    sent_at: datetime
    on_time: bool


class OverdueTransmittal(BaseModel):
    office: str
    month: str
    due_on: date
    forms: int
    sent_on: date | None

"""Request and response bodies of the casework API."""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.activity_types import ACTIVITY_TYPES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivityCreate(Strict):
    case_ref: str = Field(min_length=1, max_length=200, description="案号")
    activity_type: str = Field(min_length=1, max_length=60, description=f"N-ACT：{'、'.join(ACTIVITY_TYPES)}")
    other_description: str | None = Field(default=None, max_length=500, description="类型为 other 时必填")
    mandatory_invitation: bool = Field(default=False, description="N-MUST：应当邀请人民监督员")
    office: str | None = Field(default=None, min_length=1, max_length=100)
    district: str = Field(min_length=1, max_length=50)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
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


class ConsentIn(Strict):
    by: str = Field(min_length=1, max_length=100, description="同意的市司法局工作人员")
    at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class SupervisionRequestCreate(Strict):
    seats: int = Field(ge=1, le=20)
    seats_local: int | None = Field(default=None, ge=0, le=20)
    specialty: str | None = Field(default=None, min_length=1, max_length=60)
    conflict_parties: list[str] = Field(default_factory=list, max_length=50)
    lead_time_consent: ConsentIn | None = Field(default=None, description="R10.2：市司法局同意的特殊情形")


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


class SupervisionRequestRead(BaseModel):
    request_id: uuid.UUID
    activity_id: uuid.UUID
    status: str
    seats: int
    seats_local: int | None
    specialty: str | None
    requested_at: datetime
    lead_time_consent: dict[str, Any] | None
    refusal: Refusal | None
    receipt_hash: str | None
    roster: list[RosterMember]
    released: list[RosterMember]
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

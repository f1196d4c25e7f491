"""Request bodies of the selection API."""

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.activity_types import ACTIVITY_TYPES
from shared.lead_time import ActivityMoment

# N-ACT: the activity types of the measures (shared.activity_types); anything else is a 422, never a request
# nobody can label, pay (finance's rates are per type) or count in the statistics
ActivityType = Literal[ACTIVITY_TYPES]


class ShortNoticeIn(BaseModel):
    """R10.2: short notice asked for; the request waits for a bureau user's decision."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)



class RequestCreate(BaseModel):
    """A request the bureau records on the procuratorate's behalf (it arrived on paper or by phone).

    The seat split, balance mode and beacon are the bureau's policy (settings), not fields here.
    """

    model_config = ConfigDict(extra="forbid")
    request_id: uuid.UUID
    activity_id: uuid.UUID
    case_ref: str = Field(min_length=1, max_length=100)
    activity_type: ActivityType = Field(description="N-ACT 活动类型代码，如 public_hearing（公开听证）")
    office: str = Field(min_length=1, max_length=100)
    district: str = Field(min_length=1, max_length=50)
    starts_at: ActivityMoment
    ends_at: ActivityMoment
    place: str = Field(min_length=1, max_length=200)
    seats: int = Field(ge=1, le=50)
    specialty: str | None = Field(default=None, min_length=1, max_length=50)
    conflict_parties: list[str] = Field(default=[], max_length=100)
    received_at: AwareDatetime | None = Field(
        default=None, description="收到纸质或电话通知的时间（由录入的市司法局工作人员陈述，记入审计日志；缺省为现在）")
    short_notice: ShortNoticeIn | None = None


class ShortNoticeDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    granted: bool
    reason: str = Field(min_length=1, max_length=500)


class BeaconIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=200, description="受理时指定的公开随机源在该期公布的结果")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class AttemptIn(BaseModel):
    """One attempt to reach the supervisor: when, and how (DRAW.md "Contact")."""

    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime
    channel: Literal["phone", "sms", "in_person", "email"]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supervisor_id: uuid.UUID
    outcome: Literal["confirmed", "declined", "unreachable", "recused"]
    reason: str | None = Field(default=None, min_length=1, max_length=500)
    attempts: list[AttemptIn] = Field(default=[], max_length=20,
                                      description="联系尝试（时间、方式）；无法联系须至少两次且相隔一定时间（R12.1）")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class SelfRecusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ground: str = Field(min_length=1, max_length=500)


class RecusalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: uuid.UUID
    supervisor_id: uuid.UUID
    source: Literal["procuratorate", "party"]
    ground: str = Field(min_length=1, max_length=500)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    granted: bool
    reason: str = Field(min_length=1, max_length=500)


class RelationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party_names: list[str] = Field(max_length=200)


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supervisor_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=500, description="缺席情况（是否事先告知、有无正当理由）")

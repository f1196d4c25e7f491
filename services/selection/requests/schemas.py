"""Request bodies of the selection API (same fields as the SupervisionRequested event)."""

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ConsentIn(BaseModel):
    """The bureau's recorded consent to a shorter lead time (R10.2): who, when, why."""

    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=100)
    at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


Text100 = Field(min_length=1, max_length=100)


class RequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: uuid.UUID
    activity_id: uuid.UUID
    case_ref: str = Field(min_length=1, max_length=100)
    activity_type: str = Field(min_length=1, max_length=100)
    office: str = Field(min_length=1, max_length=100)
    district: str = Field(min_length=1, max_length=50)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    place: str = Field(min_length=1, max_length=200)
    seats: int = Field(ge=1, le=50)
    seats_local: int | None = Field(default=None, ge=0, le=50)
    specialty: str | None = Field(default=None, min_length=1, max_length=50)
    conflict_parties: list[str] = Field(default=[], max_length=100)
    requested_at: AwareDatetime
    lead_time_consent: ConsentIn | None = None
    procuratorate_nonce: str | None = Field(default=None, min_length=1, max_length=200)
    public_value: str | None = Field(default=None, min_length=1, max_length=200)
    balance_mode: Literal["strict", "weighted"] | None = None


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supervisor_id: uuid.UUID
    outcome: Literal["confirmed", "declined", "unreachable", "recused"]
    reason: str | None = Field(default=None, min_length=1, max_length=500)


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

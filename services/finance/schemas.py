"""Request and response models of the finance API. Amounts are integer fen (strict: no floats)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.activity_types import ACTIVITY_TYPES

Fen = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000, description="金额（分）")]
ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
State = Literal["draft", "checked", "approved", "paid"]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ActivityTypeRead(BaseModel):
    code: str
    label: str


class RateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activity_type: ActivityType
    amount_fen: Fen
    effective_from: date = Field(ge=date(2024, 12, 1), le=date(9999, 12, 31))


class RateRead(BaseModel):
    id: int
    activity_type: str
    amount_fen: int
    amount_yuan: str
    effective_from: date
    created_by: str
    created_at: datetime


class PlanRowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: int = Field(ge=1, le=12)
    activity_type: ActivityType
    count: int = Field(strict=True, ge=0, le=10_000)


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[PlanRowIn] = Field(max_length=12 * len(ACTIVITY_TYPES))


class PlanRead(BaseModel):
    id: uuid.UUID
    year: int
    office: str
    district: str | None
    submitted_by: str
    submitted_at: datetime
    rows: list[PlanRowIn]


class BudgetMonth(BaseModel):
    month: int
    planned_activities: int
    budget_fen: int
    spend_fen: int
    remaining_fen: int


class BudgetRead(BaseModel):
    year: int
    offices: list[str]
    travel_allowance_per_activity_fen: int
    months: list[BudgetMonth]
    total_budget_fen: int
    total_spend_fen: int


class BankAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank_name: Text200
    account_number: Annotated[str, StringConstraints(pattern=r"^[0-9]{8,30}$")]


class SupervisorRead(BaseModel):
    id: uuid.UUID
    name: str | None
    district: str | None
    bank_name: str | None
    bank_account_masked: str | None


class LineRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_id: uuid.UUID
    form_id: uuid.UUID | None
    activity_type: str
    activity_type_label: str
    type_known: bool
    activity_date: date
    district: str | None
    rate_id: int
    amount_fen: int
    amount_yuan: str
    status: str
    checked_by: str | None
    approved_by: str | None
    paid_on: date | None
    payment_reference: str | None


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paid_on: date = Field(ge=date(2024, 12, 1), le=date(9999, 12, 31))
    payment_reference: Text200


class TravelItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Literal["transport", "accommodation", "meal", "other"]
    amount_fen: Fen
    nights: int = Field(default=1, strict=True, ge=1, le=60)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class TravelClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    supervisor_id: uuid.UUID | None = Field(default=None, description="监督员本人申报时可省略")
    purpose_kind: Literal["activity", "training", "meeting"]
    purpose_ref: Text200
    travel_date: date = Field(ge=date(2024, 12, 1), le=date(9999, 12, 31))
    items: list[TravelItemIn] = Field(min_length=1, max_length=50)


class TravelItemRead(BaseModel):
    id: uuid.UUID
    category: str
    amount_fen: int
    nights: int
    description: str | None
    receipt_sha256: str | None
    receipt_content_type: str | None


class CapWarning(BaseModel):
    item: int
    category: str
    amount_fen: int
    cap_fen: int
    message: str


class TravelClaimRead(BaseModel):
    id: uuid.UUID
    supervisor_id: uuid.UUID
    purpose_kind: str
    purpose_ref: str
    travel_date: date
    total_fen: int
    total_yuan: str
    status: str
    created_by: str
    checked_by: str | None
    approved_by: str | None
    paid_on: date | None
    payment_reference: str | None
    items: list[TravelItemRead]
    warnings: list[CapWarning]


class DisbursementRowRead(BaseModel):
    seq: int
    supervisor_id: uuid.UUID
    name: str
    district: str
    activities: int
    subsidy_fen: int
    travel_fen: int
    total_fen: int
    bank_name: str
    bank_account: str
    remark: str


class DisbursementRead(BaseModel):
    year: int
    month: int
    masked: bool
    rows: list[DisbursementRowRead]
    total_activities: int
    total_subsidy_fen: int
    total_travel_fen: int
    total_fen: int


class MissingLine(BaseModel):
    form_id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_id: uuid.UUID
    activity_date: date


class OrphanLine(BaseModel):
    line_id: uuid.UUID
    supervisor_id: uuid.UUID
    activity_id: uuid.UUID
    form_id: uuid.UUID | None
    status: str


class ReconciliationRead(BaseModel):
    year: int
    month: int
    ok: bool
    forms_checked: int
    lines_checked: int
    missing_lines: list[MissingLine]
    orphan_lines: list[OrphanLine]

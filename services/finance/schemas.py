"""Request and response models of the finance API. Amounts are integer fen (strict: no floats)."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.activity_types import ACTIVITY_TYPES

Fen = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000, description="金额（分）")]
ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
State = Literal["draft", "checked", "approved", "paid", "rejected"]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


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
    status: str = Field(description="approved：已生效；pending：追溯生效，待另一名财务人员批准（N-RATE）")
    approved_by: str | None


class PlanRowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: int = Field(ge=1, le=12)
    activity_type: ActivityType
    count: int = Field(strict=True, ge=0, le=10_000, description="计划活动次数")
    seats: int = Field(strict=True, ge=1, le=50, description="每次活动的人民监督员人数（补助按人计发，R41.1）")


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
    planned_supervisor_activities: int
    budget_fen: int
    spend_fen: int
    remaining_fen: int


class BudgetRead(BaseModel):
    year: int
    offices: list[str]
    travel_allowance_per_activity_fen: int
    district: str | None
    months: list[BudgetMonth]
    total_budget_fen: int
    total_spend_fen: int
    total_remaining_fen: int


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
    paid_by: str | None
    paid_at: datetime | None
    payment_reference: str | None
    rejected_by: str | None
    reject_reason: str | None
    excess_approved_by: str | None
    excess_reason: str | None
    table_id: uuid.UUID | None


class PayIn(BaseModel):
    """R42.1: the bank's reference of the transfer; who and when come from the token and the server clock."""
    model_config = ConfigDict(extra="forbid")
    payment_reference: Text200


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class ClaimApproveIn(BaseModel):
    """R43.1: approve the whole claim, or part of it (approved_fen < total) with a reason."""
    model_config = ConfigDict(extra="forbid")
    approved_fen: Fen | None = None
    reason: Reason | None = None


class CoveringLetterIn(BaseModel):
    """R42.1: the procuratorate's 人民监督员履职情况反馈函 of a month, as received by the bureau."""
    model_config = ConfigDict(extra="forbid")
    period: Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    district: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                               pattern=r"^[^\x00-\x1f\x7f]+$")] | None = Field(
        default=None, description="区市；省略为全市")
    reference: Text200 = Field(description="反馈函文号")


class CoveringLetterRead(BaseModel):
    id: uuid.UUID
    year: int
    month: int
    district: str | None
    reference: str
    recorded_by: str
    received_at: datetime


class CorrectionIn(BaseModel):
    """R42.1: a new version of an issued table; unpaid items may be moved out (to a later table)."""
    model_config = ConfigDict(extra="forbid")
    reason: Reason
    exclude_line_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    exclude_claim_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)


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
    approved_fen: int | None
    approval_note: str | None
    payable_fen: int
    activity_id: uuid.UUID | None
    district: str | None
    paid_on: date | None
    paid_by: str | None
    paid_at: datetime | None
    payment_reference: str | None
    rejected_by: str | None
    reject_reason: str | None
    excess_approved_by: str | None
    excess_reason: str | None
    table_id: uuid.UUID | None
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
    paid_fen: int
    payment: str


class DisbursementRead(BaseModel):
    year: int
    month: int
    masked: bool
    scope: str
    status: Literal["draft", "issued", "superseded"]
    table_id: uuid.UUID | None
    batch_no: str | None
    version: int | None
    issued_by: str | None
    issued_at: datetime | None
    correction_reason: str | None
    total_paid_fen: int
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


class DisbursementVersionRead(BaseModel):
    id: uuid.UUID
    year: int
    month: int
    scope: str
    batch_no: str
    version: int
    status: str
    supersedes_id: uuid.UUID | None
    correction_reason: str | None
    issued_by: str
    issued_at: datetime
    superseded_at: datetime | None
    row_count: int
    total_fen: int


class ReconciliationRead(BaseModel):
    year: int
    month: int
    scope: str
    ok: bool
    forms_checked: int
    lines_checked: int
    missing_lines: list[MissingLine]
    orphan_lines: list[OrphanLine]


class WorkListFlags(BaseModel):
    """R42.1/R43.1: what an item waits for and whether the caller may do it now (four eyes)."""

    supervisor_name: str | None = None
    waiting_for: Literal["check", "approve", "issue", "pay"] | None = Field(
        default=None, description="下一步：审核、批准、列入发放表、支付；已办结为空")
    may_act: bool = Field(default=False, description="当前用户现在可以办理（不能批准本人审核的）")


class LineListItem(WorkListFlags, LineRead):
    pass


class TravelClaimListItem(WorkListFlags, TravelClaimRead):
    pass


class Money(BaseModel):
    count: int
    amount_fen: int
    amount_yuan: str = Field(description="元，两位小数")


class MonthMoney(Money):
    month: int


class DistrictMoney(Money):
    district: str | None


class KindMoney(Money):
    kind: str = Field(description="活动类型代码；travel 为差旅费")
    label: str


class PaidStatisticsRead(BaseModel):
    """R42.1/R43.1: paid subsidies (by activity type) and travel claims, by the day they were paid."""

    year: int
    month: int | None
    district: str | None
    total: Money
    subsidy: Money
    travel: Money
    by_month: list[MonthMoney]
    by_district: list[DistrictMoney]
    by_kind: list[KindMoney]

"""Finance settings: travel caps and claim periods (R43.1), the budget's travel allowance (R41.1), upload limits."""

from pydantic import Field

from shared.settings import CommonSettings

DEFAULT_TRAVEL_CAPS_FEN = {
    # per item; accommodation is per night (the item carries `nights`)
    "transport": 100_000,
    "accommodation": 40_000,
    "meal": 10_000,
    "other": 20_000,
}


class FinanceSettings(CommonSettings):
    """Settings of the finance service (env: TRAVEL_CAPS_FEN='{"accommodation": 40000, ...}', ...)."""

    travel_caps_fen: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_TRAVEL_CAPS_FEN))
    travel_allowance_per_activity_fen: int = 5_000
    receipt_max_bytes: int = 5 * 1024 * 1024
    receipt_content_types: list[str] = Field(default_factory=lambda: ["application/pdf", "image/jpeg", "image/png"])
    bureau_name: str = "威海市司法局"
    # R43.1/N-RATE: claims are filed within this many days after the travel
    travel_claim_deadline_days: int = Field(default=90, ge=1, le=3650)
    # R43.1: the travel of an activity claim lies within this many days of the activity
    travel_activity_window_days: int = Field(default=1, ge=0, le=30)
    # R42.1: the table of a month is due on this day of the next month (GET /deadlines; the measures set no day)
    disbursement_due_day: int = Field(default=10, ge=1, le=31)

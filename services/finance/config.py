"""Finance settings: travel caps (R43.1), the travel allowance of the budget (R41.1), upload limits."""

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

"""Selection settings: seat split, yearly cap, balance mode; the bureau changes them by configuration."""

from typing import Literal

from pydantic import Field

from shared.settings import CommonSettings


class SelectionSettings(CommonSettings):
    """Settings of the selection service (env: YEARLY_CAP=12, LOCAL_SHARE=0.5, ...)."""

    # seats_local = ceil(seats * local_share) unless the request says otherwise (R11.1)
    local_share: float = Field(default=0.5, ge=0, le=1)
    # at most this many confirmed assignments per supervisor per calendar year (Asia/Shanghai)
    yearly_cap: int = Field(default=12, ge=1)
    # replacements ordered after the seats of each group (DRAW.md "alternates per group"); when a
    # group's list runs out, the next round is drawn excluding everyone tried (R14.1)
    draw_alternates: int = Field(default=10, ge=0, le=1000)
    balance_mode: Literal["strict", "weighted"] = "strict"
    weight_base: int = Field(default=4, ge=2, le=1000)  # an integer: receipts hold no floats (DRAW.md)
    # DRAW.md protocol step 4: without the procuratorate's reveal this long after acceptance, the
    # draw runs without its nonce (and the receipt says so); the job looks this often
    draw_reveal_timeout_seconds: float = Field(default=600, gt=0)
    draw_job_seconds: float = Field(default=2.0, gt=0)
    # an optional public beacon named at acceptance (source + round), its value entered later by a
    # bureau user; off by default, always named for a request the bureau records itself
    beacon_enabled: bool = False
    beacon_source: str = "中国福利彩票双色球开奖号码"
    # R10.1: an activity further ahead than this (calendar days) is refused as a mistake
    max_days_ahead: int = Field(default=730, ge=30, le=3650)
    # a bureau user recording a paper or phone request may state its receipt time at most this far back
    received_claim_max_days: int = Field(default=30, ge=0, le=365)
    # R12.1 evidence: "unreachable" needs this many attempts, the first and last this far apart
    unreachable_min_attempts: int = Field(default=2, ge=2, le=10)
    unreachable_min_gap_seconds: int = Field(default=600, ge=1)
    registry_url: str = "http://127.0.0.1:8001"
    registry_timeout_seconds: float = 3.0

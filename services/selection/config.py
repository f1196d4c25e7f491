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
    weight_base: float = Field(default=4.0, gt=1)
    # a public value named in advance (e.g. a lottery draw result); null if none
    public_value: str | None = None
    registry_url: str = "http://127.0.0.1:8001"
    registry_timeout_seconds: float = 3.0

"""Casework settings: upload limits, the names printed on the feedback form, and the receipt check."""

from pydantic import Field

from shared.settings import CommonSettings


class CaseworkSettings(CommonSettings):
    """Settings of the casework service (env: MATERIAL_MAX_BYTES=..., SELECTION_URL=..., ...)."""

    material_max_bytes: int = 5 * 1024 * 1024
    signature_image_max_bytes: int = 512 * 1024
    procuratorate_name: str = "威海市人民检察院"
    bureau_name: str = "威海市司法局"
    # DRAW.md protocol step 5: casework fetches each draw's receipt from selection and checks it
    selection_url: str = "http://127.0.0.1:8002"
    selection_timeout_seconds: float = 3.0
    receipt_check_seconds: float = Field(default=5.0, gt=0)  # how often the job looks for receipts to check
    receipt_check_batch: int = Field(default=20, ge=1, le=500)

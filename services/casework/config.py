"""Casework settings: upload limits and the names printed on the feedback form."""

from shared.settings import CommonSettings


class CaseworkSettings(CommonSettings):
    """Settings of the casework service (env: MATERIAL_MAX_BYTES=..., ...)."""

    material_max_bytes: int = 5 * 1024 * 1024
    signature_image_max_bytes: int = 512 * 1024
    procuratorate_name: str = "威海市人民检察院"
    bureau_name: str = "威海市司法局"

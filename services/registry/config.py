"""Registry settings: districts and the default specialty list come from configuration, not code."""

from shared.settings import CommonSettings

DEFAULT_DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
DEFAULT_SPECIALTIES = ["法律", "会计审计", "医学", "建筑工程", "教育", "环境资源", "金融", "信息技术", "其他"]


class RegistrySettings(CommonSettings):
    """Settings of the registry service (env: DISTRICTS='["环翠区", ...]', ...)."""

    districts: list[str] = DEFAULT_DISTRICTS
    default_specialties: list[str] = DEFAULT_SPECIALTIES
    procuratorate_name: str = "威海市人民检察院"
    bureau_name: str = "威海市司法局"
    certificate_prefix: str = "威监证"
    work_card_prefix: str = "WH-GZ"
    # R4.1: how often the service ends expired terms by itself (the job is idempotent and takes an advisory
    # lock, so several replicas may run it); a term's end is applied within this long after midnight
    term_end_job_seconds: float = 300.0
    # N-TERM: days of gap after a term's end within which the next term still counts as consecutive
    # (0: only a term starting the next day; no source we hold sets a tolerance)
    n_term_gap_days: int = 0
    # N-TERM: the procuratorate level this bureau appoints for (one person serves one level only)
    procuratorate_level: str = "city"

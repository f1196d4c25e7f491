"""The case activity types of N-ACT (SPP 2019 rules) with their Chinese labels: one list for every service."""

PUBLIC_HEARING = "public_hearing"
COURT_SUPPORT = "court_support"
CIRCUIT_INSPECTION = "circuit_inspection"
PROCURATORIAL_SUGGESTION = "procuratorial_suggestion"
PUBLIC_DELIVERY = "public_delivery"
CASE_QUALITY_REVIEW = "case_quality_review"
JUDICIAL_INSPECTION = "judicial_inspection"
WORK_BRIEFING = "work_briefing"
OTHER = "other"

LABELS: dict[str, str] = {
    PUBLIC_HEARING: "公开听证/公开审查",
    COURT_SUPPORT: "出庭支持公诉",
    CIRCUIT_INSPECTION: "巡回检察",
    PROCURATORIAL_SUGGESTION: "检察建议",
    PUBLIC_DELIVERY: "公开宣告送达",
    CASE_QUALITY_REVIEW: "案件质量评查",
    JUDICIAL_INSPECTION: "司法规范化检查",
    WORK_BRIEFING: "工作通报",
    OTHER: "其他",
}

ACTIVITY_TYPES: tuple[str, ...] = tuple(LABELS)


def is_known(activity_type: str) -> bool:
    return activity_type in LABELS


def label(activity_type: str) -> str:
    return LABELS.get(activity_type, f"未知类型（{activity_type}）")

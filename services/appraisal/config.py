"""Appraisal settings: R33.1/R31.1 thresholds, notice and defence periods (all configuration, not code)."""

from services.appraisal.rules import Thresholds
from shared.settings import CommonSettings


class AppraisalSettings(CommonSettings):
    """Settings of the appraisal service (env: QUALIFIED_MIN_ACTIVITIES=2, DEFENCE_WINDOW_DAYS=10, ...)."""

    # R33.1: below these → proposed 基本合格 (the Shandong measures decide; a person confirms)
    qualified_min_activities: int = 1
    qualified_requires_annual_training: bool = True
    qualified_max_late_change_reports: int = 0
    # R31.1: excellent candidates from ledger figures
    excellent_min_activities: int = 3
    excellent_min_adopted: int = 1
    excellent_min_training_hours: float = 8.0
    excellent_max_reminders: int = 0
    weight_activity: float = 3.0
    weight_adopted: float = 5.0
    weight_training_hour: float = 0.5
    # R34.1(5): public notice of the excellent list, in working days
    public_notice_working_days: int = 5
    # R35.1: statement/defence window, in calendar days counted from the day after the notice was sent
    defence_window_days: int = 10
    # R29.1: an annual round opens from this month/day of its year (year end) into early next year
    annual_round_opens_month: int = 12
    annual_round_opens_day: int = 1
    # R29.1 "年末或者翌年年初": an annual round not opened by this month/day of the next year is overdue
    annual_round_due_by_month: int = 1
    annual_round_due_by_day: int = 31
    bureau_name: str = "威海市司法局"

    def annual_round_opens(self) -> tuple[int, int]:
        return self.annual_round_opens_month, self.annual_round_opens_day

    def annual_round_due_by(self) -> tuple[int, int]:
        return self.annual_round_due_by_month, self.annual_round_due_by_day

    def thresholds(self) -> Thresholds:
        return Thresholds(**{k: getattr(self, k) for k in Thresholds.__dataclass_fields__})

"""Notify settings: SMS gateway (Tencent Cloud SMS), quiet hours, retries, the reminder job."""

from datetime import time

from pydantic import Field, SecretStr, model_validator

from shared.settings import CommonSettings

# the services whose GET /deadlines the reminder job reads (one without it answers 404 and is skipped)
DEADLINE_SERVICES = ["registry", "selection", "casework", "appraisal", "finance"]


class NotifySettings(CommonSettings):
    """Settings of the notify service (env: SMS_SECRET_ID=…, QUIET_HOURS_START=21:00, …)."""

    # --- SMS: Tencent Cloud SMS API 2021-01-11 (SendSms, TC3-HMAC-SHA256). Without SMS_SECRET_ID /
    # SMS_SECRET_KEY (development) every SMS goes to the log instead (recorded as provider "log").
    sms_endpoint: str = "https://sms.tencentcloudapi.com"
    sms_region: str = "ap-guangzhou"
    sms_secret_id: str | None = None
    sms_secret_key: SecretStr | None = None
    sms_sdk_app_id: str = ""
    sms_sign_name: str = ""  # the approved signature, e.g. 威海市司法局
    sms_template_id: str = ""  # the default template: two parameters, {1} title and {2} text
    sms_templates: dict[str, str] = Field(default_factory=dict)  # per message kind, overrides the default
    sms_timeout_seconds: float = Field(default=5.0, gt=0)
    # retries: attempt n waits min(cap, base · 2^(n-1)) after a failure; after the last one: failed
    sms_max_attempts: int = Field(default=6, ge=1, le=50)
    sms_backoff_base_seconds: float = Field(default=30.0, gt=0)
    sms_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    sms_dispatch_seconds: float = Field(default=5.0, gt=0)  # how often queued SMS are sent
    sms_batch: int = Field(default=50, ge=1, le=1000)

    # --- quiet hours (Asia/Shanghai): non-urgent SMS wait until the end; urgent ones go at once
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)

    # --- reminders from every service's GET /deadlines (shared/deadlines.py)
    reminder_job_seconds: float = Field(default=600.0, gt=0)
    deadline_services: list[str] = Field(default_factory=lambda: list(DEADLINE_SERVICES))
    deadline_timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def sms_configured(self) -> bool:
        return bool(self.sms_secret_id and self.sms_secret_key and self.sms_secret_key.get_secret_value())

    @model_validator(mode="after")
    def _production_sends_real_sms(self) -> "NotifySettings":
        if self.sms_configured and not (self.sms_sdk_app_id and self.sms_sign_name and self.sms_template_id):
            raise ValueError("SMS_SECRET_ID/SMS_SECRET_KEY need SMS_SDK_APP_ID, SMS_SIGN_NAME and SMS_TEMPLATE_ID")
        return self

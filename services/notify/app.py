"""The notify service app: messages for people from the events and the deadlines, in-app inbox and SMS."""

import uuid

import httpx
from fastapi import FastAPI

from services.notify import service as svc
from services.notify.config import NotifySettings
from services.notify.consumers import build_handlers
from services.notify.models import metadata, platform
from services.notify.router import router
from services.notify.sms import LogSms, TencentSms
from shared.app import PeriodicJob, ServiceSpec, create_service_app
from shared.http import ServiceClient

DESCRIPTION = """人民监督员通知服务：把与人有关的事件和各服务的到期事项变成消息。

- 人民监督员（仅本人）：被抽选并确认参加（R12.1）、代为记录的退出或回避（R14.2、R13.2）、缺席记录（R28.1）、
  反馈表已签署（R17.1）、意见处理情况（R18.1）、考核结果与表扬（R39.1、R38.1）、补助已批准（R42.1）。
- 工作人员（按角色和区市，R2.1）：缩短通知期限待同意（R10.2）、抽选人数不足（R14.1）、回避申请待决定（R13.2）、
  申请不予受理（R10.1）、回执核验不一致、各服务 GET /deadlines 的到期前一日、当日和逾期提醒（各一次）。
- 渠道：站内信（GET /inbox）与短信（腾讯云短信 SendSms，TC3-HMAC-SHA256 签名）。每条消息每个渠道一条投递记录
  （排队、暂缓、重试、已发送、失败，次数与错误），同一事件只生成一条消息；消息中不含完整身份号码；
  非紧急短信在免打扰时段（默认 21:00–08:00，上海时间）暂缓发送。开发环境无短信密钥时短信写入日志。
"""


def phone_lookup(settings: NotifySettings, transport: httpx.AsyncBaseTransport | None = None):
    """The phone of a supervisor from the registry (GET /supervisors/{id}/contact, role service, audited there).
    `transport` lets a test reach an in-process registry app with this same client code."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    client: ServiceClient | None = None

    async def lookup(supervisor_id: uuid.UUID) -> str | None:
        nonlocal client
        if client is None:
            client = ServiceClient("registry", settings.service_urls.get("registry", "http://registry"), token,
                                   timeout=settings.sms_timeout_seconds, transport=transport)
        found = await client.get_json(f"/supervisors/{supervisor_id}/contact")
        return None if found is None else found.get("phone")

    return lookup


def deadline_fetch(app: FastAPI, settings: NotifySettings):
    """GET {service}/deadlines?within_days=1 with the service token; None when the service has no such endpoint.
    `app.state.service_transports` (service → httpx transport) lets tests reach in-process apps."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    clients: dict[str, ServiceClient] = {}

    async def fetch(service: str) -> dict | None:
        if service not in clients:
            transport = app.state.service_transports.get(service)
            if transport is None and service not in settings.service_urls:
                raise LookupError(f"no URL for {service} in SERVICE_URLS")
            clients[service] = ServiceClient(service, settings.service_urls.get(service, f"http://{service}"), token,
                                             timeout=settings.deadline_timeout_seconds, transport=transport)
        return await clients[service].get_json("/deadlines", within_days=1)

    return fetch


def sms_sender(settings: NotifySettings):
    if not settings.sms_configured:
        return LogSms()
    return TencentSms(endpoint=settings.sms_endpoint, region=settings.sms_region, secret_id=settings.sms_secret_id,
                      secret_key=settings.sms_secret_key.get_secret_value(), sdk_app_id=settings.sms_sdk_app_id,
                      sign_name=settings.sms_sign_name, timeout=settings.sms_timeout_seconds)


async def dispatch_job(app: FastAPI) -> dict:
    """Send the SMS that are due (once per period across replicas, shared/scheduler.py)."""
    return await svc.dispatch_sms(app.state.db, sender=app.state.sms_sender, settings=app.state.settings,
                                  cipher=app.state.cipher, lookup_phone=app.state.phone_lookup)


async def reminder_job(app: FastAPI) -> dict:
    """Reminders from every service's deadlines: a day before, on the due day, overdue (each once)."""
    return await svc.remind(app.state.db, fetch=app.state.deadline_fetch, settings=app.state.settings,
                            cipher=app.state.cipher)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    spec = ServiceSpec(
        name="notify", title="人民监督员通知服务", description=DESCRIPTION, metadata=metadata, platform=platform,
        routers=[router], build_handlers=build_handlers,
        jobs=[PeriodicJob("sms-dispatch", settings.sms_dispatch_seconds, dispatch_job),
              PeriodicJob("deadline-reminders", settings.reminder_job_seconds, reminder_job)],
        on_shutdown=[],
    )
    app = create_service_app(spec, settings)
    app.state.sms_sender = sms_sender(settings)
    app.state.phone_lookup = phone_lookup(settings)
    app.state.service_transports = {}
    app.state.deadline_fetch = deadline_fetch(app, settings)
    return app

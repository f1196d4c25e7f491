"""The registry service app: roster, appointment, changes, resignation, dismissal, training, eligibility."""

import dataclasses

from fastapi import FastAPI

from services.registry.appointments.router import router as appointments_router
from services.registry.appointments.service import term_end_job
from services.registry.bulk.router import router as bulk_router
from services.registry.changes.router import router as changes_router
from services.registry.config import RegistrySettings
from services.registry.consumers import HANDLERS
from services.registry.deadlines import READERS as DEADLINE_READERS
from services.registry.deadlines import compute as compute_deadlines
from services.registry.dismissals.router import router as dismissals_router
from services.registry.models import metadata, platform
from services.registry.roster.router import router as roster_router
from services.registry.training.router import router as training_router
from shared.app import PeriodicJob, ServiceSpec, create_service_app
from shared.db import read
from shared.deadlines import deadlines_router

DESCRIPTION = """人民监督员名册服务（《威海市人民监督员履职管理实施办法》第二章、第四章）。

流程：`POST /supervisors` 登记候选人（状态 candidate，区市司法局可在本辖区提出）→
`POST /supervisors/{id}/appointments` 任命（状态 active，发放证书和工作证编号，发布 SupervisorAppointed）→
培训结果（初任培训考试通过后才可参加抽选，R22.3）→ 辞职 / 免除资格（R7.1–R9.1）。
任期届满由服务自行定时处理（R4.1）；个人信息默认脱敏（出生日期不显示），每次读取记入审计（R3.1）。
"""

spec = ServiceSpec(name="registry", title="人民监督员名册服务", metadata=metadata, platform=platform,
                   # bulk first: its /supervisors/import-template and /supervisors/export are not supervisor ids
                   routers=[bulk_router, roster_router, appointments_router, changes_router, dismissals_router,
                            training_router, deadlines_router(compute_deadlines, readers=DEADLINE_READERS)],
                   handlers=HANDLERS, description=DESCRIPTION)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    # R4.1: terms end by themselves (idempotent, advisory-locked: safe with several replicas)
    jobs = [PeriodicJob("term-end", settings.term_end_job_seconds, term_end_job)]
    app = create_service_app(dataclasses.replace(spec, jobs=jobs), settings)
    read.install(app)  # the roster lists' read-only engine
    return app

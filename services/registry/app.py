"""The registry service app: roster, appointment, changes, resignation, dismissal, training, eligibility."""

from fastapi import FastAPI

from services.registry import fastpath
from services.registry.config import RegistrySettings
from services.registry.consumers import HANDLERS
from services.registry.models import metadata, platform
from services.registry.router import router
from shared.app import ServiceSpec, create_service_app

DESCRIPTION = """人民监督员名册服务（《威海市人民监督员管理办法》第二章、第四章）。

流程：`POST /supervisors` 登记候选人（状态 candidate，区市司法局可在本辖区提出）→
`POST /supervisors/{id}/appointments` 任命（状态 active，发放证书和工作证编号，发布 SupervisorAppointed）→
培训结果（初任培训考试通过后才可参加抽选，R22.3）→ 辞职 / 免除资格（R7.1–R9.1）。
"""

spec = ServiceSpec(name="registry", title="人民监督员名册服务", metadata=metadata, platform=platform,
                   routers=[router], handlers=HANDLERS, description=DESCRIPTION)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    app = create_service_app(spec, settings or RegistrySettings())
    fastpath.install(app)
    return app

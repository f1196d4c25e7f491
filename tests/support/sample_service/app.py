"""The pretend service's app: a couple of endpoints exercising session, outbox, errors and auth."""

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from shared.app import OutboxDep, ServiceSpec, SessionDep, create_service_app
from shared.auth import Principal, Role, require
from shared.errors import Conflict
from shared.events.contracts import EligibilityChanged
from shared.settings import CommonSettings
from tests.support.sample_service.models import metadata, note, platform

router = APIRouter()


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=100)
    refuse: bool = False


@router.post("/notes", status_code=201)
async def create_note(
    body: NoteIn, session: SessionDep, outbox: OutboxDep,
    principal: Principal = Depends(require(Role.BUREAU_ADMIN)),
) -> dict:
    await session.execute(note.insert().values(text=body.text))
    await outbox.add(session, EligibilityChanged(supervisor_id=uuid.uuid4(), eligible=True, reasons=[]))
    if body.refuse:  # written, then refused: the transaction must roll back both rows
        raise Conflict("sample_refused", "已拒绝", "示例：写入后拒绝")
    return {"text": body.text}


@router.get("/notes")
async def list_notes(session: SessionDep) -> list[str]:
    return list((await session.scalars(select(note.c.text).order_by(note.c.id))).all())


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail")


spec = ServiceSpec(name="sample", title="示例服务", metadata=metadata, platform=platform, routers=[router])


def build(settings: CommonSettings):
    return create_service_app(spec, settings)

"""Helpers for registry tests: valid unique id numbers, and a supervisor created/appointed/trained over HTTP."""

import random
import uuid
from datetime import date

import httpx

from services.registry.rules import id_check_digit
from shared import clock
from tests.support.apps import bearer

ADMIN = bearer("bureau_admin", subject="admin-1")
_rng = random.Random()


def new_id_number(*, year: int = 1975) -> str:
    """A valid, practically unique 18-digit resident id of a Weihai (3710xx) resident."""
    first17 = f"371002{year}{_rng.randint(1, 12):02d}{_rng.randint(1, 28):02d}{_rng.randint(0, 999):03d}"
    return first17 + id_check_digit(first17)


def new_phone() -> str:
    return f"139{_rng.randint(0, 99_999_999):08d}"


def supervisor_body(**overrides) -> dict:
    body = {
        "name": "测" + uuid.uuid4().hex[:6], "id_number": new_id_number(), "phone": new_phone(),
        "district": "环翠区", "employer": "威海市某公司", "recommending_body": "环翠区某街道办事处",
        "specialties": ["法律"],
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, **overrides) -> dict:
    response = await client.post("/supervisors", json=supervisor_body(**overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def appoint(client: httpx.AsyncClient, supervisor_id: str, *, decision_date: date | None = None,
                  **extra) -> httpx.Response:
    body = {"decision_no": f"威司任〔{uuid.uuid4().hex[:6]}〕号",
            "decision_date": (decision_date or clock.today()).isoformat(), **extra}
    return await client.post(f"/supervisors/{supervisor_id}/appointments", json=body, headers=ADMIN)


async def appointed(client: httpx.AsyncClient, *, decision_date: date | None = None, **overrides) -> dict:
    created = await create(client, **overrides)
    response = await appoint(client, created["id"], decision_date=decision_date)
    assert response.status_code == 201, response.text
    return response.json()


async def session(client: httpx.AsyncClient, kind: str = "initial", held_on: date | None = None,
                  fmt: str = "lecture") -> str:
    response = await client.post("/training/sessions", headers=ADMIN, json={
        "kind": kind, "format": fmt, "title": f"{kind}培训", "held_on": (held_on or clock.today()).isoformat(),
        "hours": 8})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def record(client: httpx.AsyncClient, session_id: str, supervisor_id: str, *, attended: bool = True,
                 exam_passed: bool | None = True) -> httpx.Response:
    return await client.post(f"/training/sessions/{session_id}/results", headers=ADMIN, json={
        "results": [{"supervisor_id": supervisor_id, "attended": attended, "exam_passed": exam_passed}]})


async def trained(client: httpx.AsyncClient, **overrides) -> dict:
    """An appointed supervisor who passed the initial exam (eligible)."""
    sup = await appointed(client, **overrides)
    response = await record(client, await session(client), sup["id"])
    assert response.status_code == 200, response.text
    return (await client.get(f"/supervisors/{sup['id']}", headers=ADMIN)).json()

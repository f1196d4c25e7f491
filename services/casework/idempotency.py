"""Idempotency-Key for external clients' POSTs: a retried call returns the first answer.

Usage in a router (explicit, in the effect's transaction):

    if (replay := await idempotency.claim(session, key, principal, request, body)) is not None:
        return replay
    result = ...the effect...
    return await idempotency.respond(session, key, principal, 201, result)

`claim` inserts the key first (INSERT … ON CONFLICT DO NOTHING): a concurrent twin blocks on the row until
the first transaction ends, then sees its stored answer. The key is only kept if the effect commits; a
refused request (an error) stores nothing, so a retry runs again. Same key with another body → 422
`idempotency_key_reused`. Candidate for `shared/` (needs an `idempotency_key` table per service).
"""

import hashlib
import json
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.errors import ProblemError, Unprocessable

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
PENDING = 0
MAX_KEY_LENGTH = 200


def fingerprint(method: str, path: str, body: Any) -> str:
    """sha256 of the canonical (method, path, JSON body): what a retry must repeat exactly."""
    payload = json.dumps({"method": method.upper(), "path": path, "body": jsonable_encoder(body)},
                         ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class Idempotency:
    """Claims and answers keys in one service's `idempotency_key` table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def claim(self, session: AsyncSession, key: str | None, principal: Principal, request: Request,
                    body: Any) -> JSONResponse | None:
        """None: go ahead (key claimed or none given); a response: the stored first answer of this key."""
        if key is None:
            return None
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise Unprocessable("invalid_idempotency_key", "Idempotency-Key 无效", "请使用 1–200 个字符的键。")
        digest = fingerprint(request.method, request.url.path, body)
        t = self.table
        inserted = (await session.execute(
            insert(t).values(subject=principal.subject, key=key, method=request.method.upper(),
                             path=request.url.path, request_hash=digest, status=PENDING)
            .on_conflict_do_nothing().returning(t.c.key)
        )).scalar_one_or_none()
        if inserted is not None:
            return None
        row = (await session.execute(select(t).where(t.c.subject == principal.subject, t.c.key == key))).one()
        if row.request_hash != digest:
            raise Unprocessable("idempotency_key_reused", "Idempotency-Key 已用于其他请求",
                                "同一 Idempotency-Key 只能用于内容完全相同的请求；请换用新的键。")
        if row.status == PENDING:  # only possible within the same transaction
            raise ProblemError(409, "idempotency_in_progress", "相同请求正在处理", "请稍后重试。")
        return JSONResponse(row.body, status_code=row.status, headers={REPLAYED: "true"})

    async def respond(self, session: AsyncSession, key: str | None, principal: Principal, status: int,
                      result: Any) -> JSONResponse:
        """Store the answer of a claimed key (same transaction as the effect) and return it."""
        body = jsonable_encoder(result)
        if key is not None:
            t = self.table
            await session.execute(update(t).where(t.c.subject == principal.subject, t.c.key == key)
                                  .values(status=status, body=body))
        return JSONResponse(body, status_code=status)

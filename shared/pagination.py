"""One way to page lists in every service.

Work lists that change while a clerk pages them (requests accepted, recusals decided, activities
recorded) page by keyset: `?limit=&cursor=` in, `{items, total, limit, next_cursor}` out
(`CursorPage`, `encode`, `decode`). `limit` is 1–200, default 50.

A cursor is `base64url(JSON [key values]) "." HMAC`, the HMAC (the app's field hash key, context
`cursor.<scope>`) taken over the list's scope (`"<service>.<list>"`), its filters and sort, and the
body: an edited cursor, one from another list or one reused with other filters is a 422
`invalid_cursor`, never a 500 or a silently different page. Pure code: the signing function is
passed in (`signer(cipher)`).

Short reference lists that do not move under the reader keep offset paging
(`?limit=&offset=` in, `{items, total, limit, offset}` out: `PageDep`, `Page`).
"""

import base64
import binascii
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Response
from pydantic import BaseModel

from shared.errors import Unprocessable

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="每页条数")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="跳过条数")] = 0,
) -> PageParams:
    # async: a plain function would be run in a worker thread on every request
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# Bounds of a date a work list filters on: beyond them a day's midnight in Shanghai is not representable
# (date.max + 1 day overflows), and nothing of the programme lies outside (R44.1: in force from 2024-12-01).
FIRST_LIST_DATE = date(2000, 1, 1)
LAST_LIST_DATE = date(2999, 12, 31)


def date_range_problem(since: date | None, until: date | None) -> tuple[str, str] | None:
    """(code, Chinese detail) when a list's date range cannot be used: reversed, or out of bounds."""
    for day in (since, until):
        if day is not None and not FIRST_LIST_DATE <= day <= LAST_LIST_DATE:
            return "date_out_of_range", f"日期应在{FIRST_LIST_DATE.isoformat()}至{LAST_LIST_DATE.isoformat()}之间。"
    if since is not None and until is not None and since > until:
        return "invalid_range", "起始日期（from）不能晚于结束日期（to）。"
    return None


def check_date_range(since: date | None, until: date | None) -> None:
    """A work list's `from`/`to` filter: 422 `invalid_range` when reversed, `date_out_of_range` beyond the bounds."""
    problem = date_range_problem(since, until)
    if problem is not None:
        raise Unprocessable(problem[0], "日期范围无效", problem[1])


# --- keyset paging -----------------------------------------------------------------------------

Sign = Callable[[str, str], str]  # (context, message) -> hex HMAC
KeyType = type[datetime] | type[date] | type[uuid.UUID] | type[str] | type[int]

Limit = Annotated[int, Query(ge=1, le=200, description="每页条数")]
CursorParam = Annotated[str | None, Query(max_length=600, description="上一页返回的 next_cursor（原样传回）")]


class CursorPage(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    next_cursor: str | None


def json_cursor_page(items: list[str], total: int, limit: int, next_cursor: str | None) -> Response:
    """A CursorPage whose items PostgreSQL already rendered as JSON objects (`shared.db.read.json_page_sql`):
    joined, not re-encoded (the cursor is base64url and hex: nothing to escape)."""
    cursor = "null" if next_cursor is None else f'"{next_cursor}"'
    body = f'{{"items":[{",".join(items)}],"total":{total},"limit":{limit},"next_cursor":{cursor}}}'
    return Response(body.encode(), media_type="application/json")


def invalid_cursor() -> Unprocessable:
    return Unprocessable(
        "invalid_cursor", "分页游标无效", "分页游标无效、已被修改或与当前筛选条件不符，请不带游标从第一页重新查询。"
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _message(scope: str, filters: dict[str, Any], body: str) -> str:
    return json.dumps([scope, filters, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode(sign: Sign, *, scope: str, filters: dict[str, Any], key: Sequence[Any]) -> str:
    """The cursor after a row whose sort key is `key`, valid only for this list and these filters."""
    body = _b64(json.dumps([_plain(v) for v in key], separators=(",", ":"), ensure_ascii=False).encode())
    return body + "." + sign(f"cursor.{scope}", _message(scope, filters, body))


def _parse(value: Any, kind: KeyType) -> Any:
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.utcoffset() is None:
            raise ValueError("naive")
        return parsed
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("int")
        return value
    if not isinstance(value, str):
        raise ValueError("str")
    return value


def decode(
    sign: Sign, token: str | None, *, scope: str, filters: dict[str, Any], types: Sequence[KeyType]
) -> list[Any] | None:
    """The sort key a cursor names (None without a cursor); 422 `invalid_cursor` for anything else."""
    if token is None:
        return None
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise invalid_cursor()
    expected = sign(f"cursor.{scope}", _message(scope, filters, body))
    if not hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")):
        raise invalid_cursor()
    try:
        values = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("shape")
        return [_parse(v, t) for v, t in zip(values, types, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc


def signer(cipher) -> Sign:
    """HMAC with the app's field hash key (the same on every replica): `FieldCipher.blind_index`."""
    return lambda context, message: cipher.blind_index(message, context=context)

"""RFC 9457 problem+json for every error: stable `code`, Chinese `title`/`detail`, never a stack trace."""

import logging
import re
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ProblemError(Exception):
    """A refusal the client sees: HTTP status, stable code (a rule id where a rule refused), Chinese text."""

    def __init__(
        self, status: int, code: str, title: str, detail: str | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{code}: {title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extra = extra


class NotFound(ProblemError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(404, "not_found", f"{what}不存在", f"未找到{what}：{ident}")


class Conflict(ProblemError):
    def __init__(self, code: str, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(409, code, title, detail, **extra)


class Unprocessable(ProblemError):
    def __init__(self, code: str, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(422, code, title, detail, **extra)


HTTP_TITLES = {
    400: ("bad_request", "请求格式错误"),
    401: ("unauthenticated", "未认证或令牌无效"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "无法提供所请求的格式"),
    409: ("conflict", "与当前状态冲突"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_error", "请求数据校验失败"),
    429: ("too_many_requests", "请求过于频繁"),
    503: ("unavailable", "服务暂不可用"),
}


def problem_response(
    status: int, code: str, title: str, detail: str | None = None, instance: str | None = None,
    headers: dict[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    """Build the problem+json response."""
    body: dict[str, Any] = {"type": f"urn:problem:{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without echoing the submitted values (they may hold personal data)."""
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "type": err.get("type"), "msg": err.get("msg")}
        for err in exc.errors()
    ]


def sqlstate(exc: DBAPIError) -> str:
    """The PostgreSQL SQLSTATE behind a driver error ('' if none)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if state:
            return str(state)
    return ""


# --- exceptions in logs and dead letters, without the values they were about -----------------------

# A quoted word right after one of these is a name of the schema (kept); any other quoted text in a
# driver's message is a value (`invalid input syntax for type integer: "…"`, `invalid input for
# query argument $1: '…'`) and is replaced.
_SCHEMA_WORDS = re.compile(
    r"\b(?:constraint|relation|column|table|index|schema|function|sequence|database|role|type|trigger|"
    r"view|extension|operator|collation|domain|cursor|savepoint|statement|channel|encoding)\s*$",
    re.IGNORECASE)
_QUOTED = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'')
_BYTES = re.compile(r"0x[0-9a-fA-F]{2}(?:\s+0x[0-9a-fA-F]{2})*")
REDACTED = "…"
MAX_DESCRIPTION = 500


def scrub_message(message: str) -> str:
    """A driver's message without the values in it: its first line only (PostgreSQL's DETAIL
    repeats the row: `Key (nonce)=(…)`, `Failing row contains (…)`), quoted values and byte
    sequences replaced; names of constraints, tables, columns and types kept."""
    first = message.strip().split("\n", 1)[0]

    def quoted(match: re.Match) -> str:
        if _SCHEMA_WORDS.search(first[:match.start()]):
            return match.group(0)
        return match.group(0)[0] + REDACTED + match.group(0)[0]

    return _BYTES.sub("0x" + REDACTED, _QUOTED.sub(quoted, first))


def _driver_error(exc: StatementError) -> BaseException | None:
    """The driver's own exception behind a SQLAlchemy error (asyncpg's, under the DBAPI adapter)."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    return cause if cause is not None and hasattr(cause, "sqlstate") else orig


def describe_exception(exc: BaseException) -> str:
    """An exception for logs and dead letters: its class and message, never the data it was about.

    Database errors give the SQLAlchemy class, the driver's class and its message without
    `[SQL: …]`, `[parameters: …]`, DETAIL lines or quoted values; a pydantic ValidationError gives
    where and what, not the input; anything else `Class: message` (a handler's own message is
    kept: do not put personal data in exception messages)."""
    if isinstance(exc, StatementError):
        driver = _driver_error(exc)
        if driver is None:
            return f"{type(exc).__name__}: (no driver error)"
        message = getattr(driver, "message", None) or (driver.args[0] if driver.args else "")
        message = re.sub(r"^<class '[\w.]+'>:\s*", "", str(message))
        state = getattr(driver, "sqlstate", None)
        described = f"{type(exc).__name__} ({type(driver).__name__}{f', SQLSTATE {state}' if state else ''}): "
        return (described + scrub_message(message))[:MAX_DESCRIPTION]
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        where = "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or '(root)'}: {e.get('msg')}" for e in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        return f"ValidationError: {len(errors)} error(s): {where}{more}"[:MAX_DESCRIPTION]
    if hasattr(exc, "sqlstate") or type(exc).__module__.split(".")[0] in _DRIVER_MODULES:
        # a driver's own exception (in a traceback's chain): its str() carries DETAIL and values
        message = getattr(exc, "message", None) or (exc.args[0] if exc.args else "")
        return f"{type(exc).__name__}: {scrub_message(str(message))}"[:MAX_DESCRIPTION]
    return f"{type(exc).__name__}: {exc}"[:MAX_DESCRIPTION * 4]


_DRIVER_MODULES = frozenset({"asyncpg", "psycopg", "psycopg2", "sqlalchemy"})


def safe_traceback(exc: BaseException) -> str:
    """A traceback for the log without exception messages that may hold values: the frames of every
    exception in the chain (file, line, code) and each exception as `describe_exception` says it."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{describe_exception(current)}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n\nThe above exception led to the following one:\n\n".join(reversed(parts))


def transactions_crossed(exc: BaseException) -> bool:
    """Two transactions crossed and PostgreSQL rolled this one back whole: a deadlock it broke (40P01), a
    serialization failure (40001), a lock wait given up (55P03). The same work again normally goes through."""
    if not isinstance(exc, DBAPIError):
        return False
    state = sqlstate(exc)
    return state.startswith("40") or state == "55P03"


def classify_database_error(exc: DBAPIError) -> tuple[int, str, str, str]:
    """Map a database refusal to a client answer: the request changed nothing in every case."""
    state = sqlstate(exc)
    if isinstance(exc, IntegrityError) or state.startswith("23"):
        # a constraint the request broke (often a concurrent duplicate): the client's problem
        return 409, "conflict", "与现有数据冲突", "数据已存在或违反约束，未做任何修改。"
    if isinstance(exc, DataError) or state.startswith("22"):
        return 422, "invalid_data", "数据无法保存", "请检查字段的长度、取值范围和特殊字符，未做任何修改。"
    if exc.connection_invalidated or isinstance(exc, OperationalError) or state.startswith(("08", "57")):
        return 503, "unavailable", "服务暂不可用", "数据库暂不可用，请稍后重试；本次请求未做任何修改。"
    if transactions_crossed(exc):
        return 503, "busy", "系统繁忙", "同时处理的请求发生冲突，本次请求未做任何修改，请稍后重试。"
    return 500, "internal_error", "系统内部错误", "请稍后重试；如持续出现请联系管理员。"


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of the app, expected or not, a problem+json answer."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.title, exc.detail, request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "validation_error", "请求数据校验失败", "请检查以下字段后重试。",
            request.url.path, errors=_validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_TITLES.get(exc.status_code, ("http_error", "请求无法处理"))
        return problem_response(
            exc.status_code, code, title, None, request.url.path, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        status, code, title, detail = classify_database_error(exc)
        # never exc_info / exc.orig here: their text carries the driver's DETAIL (the row's values)
        if status >= 500:
            log.warning("database error on %s %s: %s\n%s", request.method, request.url.path,
                        describe_exception(exc), safe_traceback(exc))
        else:
            log.info("refused by the database on %s %s: %s", request.method, request.url.path,
                     describe_exception(exc))
        headers = {"Retry-After": "5"} if status == 503 else None
        return problem_response(status, code, title, detail, request.url.path, headers=headers)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        # every pooled connection stayed busy for the pool's timeout: nothing of this request was done
        log.warning("no database connection for %s %s within the pool timeout", request.method, request.url.path)
        return problem_response(503, "busy", "系统繁忙", "当前请求较多，本次请求未做任何修改，请稍后重试。",
                                request.url.path, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # not log.exception: the traceback's messages may quote values (a chained driver error's DETAIL)
        log.error("unhandled error on %s %s: %s\n%s", request.method, request.url.path,
                  describe_exception(exc), safe_traceback(exc))
        return problem_response(500, "internal_error", "系统内部错误", "请稍后重试；如持续出现请联系管理员。",
                                request.url.path)

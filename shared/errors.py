"""RFC 9457 problem+json for every error: stable `code`, Chinese `title`/`detail`, never a stack trace."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
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
        if status >= 500:
            log.warning("database error on %s %s", request.method, request.url.path, exc_info=True)
        else:
            log.info("refused by the database on %s %s: %s", request.method, request.url.path, exc.orig)
        headers = {"Retry-After": "5"} if status == 503 else None
        return problem_response(status, code, title, detail, request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal_error", "系统内部错误", "请稍后重试；如持续出现请联系管理员。",
                                request.url.path)

"""What every page of the portal does the same way: its session, its template, its form, its refusals.

One `Portal` per app (in `app.state.portal`); the routers of the console (console.py) and of the
supervisor's pages (me.py) use it through `portal_of(request)`:
- `signed_in(request, *roles)`: the session of a signed-in person with one of the roles; otherwise back to
  sign-in with this page remembered (`SignInRequired`), or a 403 page naming what is missing;
- `page(...)`: a template rendered with the person, their CSRF token and `no-store`;
- `form(request)`: an urlencoded form whose CSRF token is this session's (a 403 page, nothing done, otherwise);
- `signed_upload(request, *roles)`: the same for a form with a file (`multipart/form-data`, read with the standard
  library's MIME parser: `python-multipart` is not installed), at most MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.portal.backend import ServiceError
from services.portal.config import PortalSettings
from services.portal.sessions import (
    COOKIE_NAME,
    CSRF_FIELD,
    SECURE_COOKIE_NAME,
    Session,
    csrf_ok,
    expired,
    seal,
    unseal,
)
from shared.activity_types import label as activity_type_label
from shared.documents.words import yuan

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_FORM_BYTES = 16 * 1024
# registry's import takes up to 5 MB, finance's receipts up to 5 MB: the form around the file adds a little
MAX_UPLOAD_BYTES = 5 * 1024 * 1024 + 64 * 1024


@dataclass(frozen=True)
class Upload:
    """A file of a multipart form: its name and type as the browser said, its bytes (the service checks them)."""

    filename: str
    media_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Upload]]:
    """The fields and files of a `multipart/form-data` body (RFC 7578), by the standard library's MIME parser."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise PageError(400, "bad_request", "表单格式错误", "请通过页面上的表单提交。")
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            if data:  # a file input left empty sends a part with no name and no bytes: no file
                files[name] = Upload(filename, part.get_content_type(), data)
        else:
            try:
                fields[name] = data.decode(part.get_content_charset() or "utf-8")
            except (UnicodeDecodeError, LookupError) as exc:
                raise PageError(400, "bad_request", "表单格式错误", "请通过页面上的表单提交。") from exc
        if len(fields) + len(files) > 20:
            raise PageError(400, "bad_request", "表单格式错误", "表单字段过多。")
    return fields, files


class PageError(Exception):
    """A refusal shown as a page: HTTP status, stable code, Chinese title and detail."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None) -> None:
        super().__init__(f"{code}: {title}")
        self.status, self.code, self.title, self.detail = status, code, title, detail


def refusal_of(error: ServiceError, codes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A service's refusal of a form, as the form shows it again (with what was typed): the service's own title and
    detail above the form, and a mark beside each field it named: a rule's code that belongs to one field (`codes`,
    e.g. registry's `invalid_phone` → `phone`: its Chinese detail there), or a validation error's `errors[].loc`."""
    fields: dict[str, str] = {}
    if codes and error.code in codes:
        fields[codes[error.code]] = error.detail or error.title
    problems = error.extra.get("errors")
    for item in problems if isinstance(problems, list) else ():
        loc = [str(p) for p in (item.get("loc") or []) if not str(p).isdigit()] if isinstance(item, dict) else []
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        if loc:
            fields.setdefault(loc[-1], "此项填写有误，请按要求填写。")
    return {"status": error.status, "code": error.code, "title": error.title, "detail": error.detail,
            "service": error.service_name, "fields": fields}


class SignInRequired(Exception):
    """No (or an expired) session on a page that needs one: to sign-in, the page remembered."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path, self.expired = next_path, expired


def cn_date(value: datetime | str | int | None, with_time: bool = False) -> str:
    """A date in Chinese style (2026年3月2日, Shanghai time), optionally with its time (09:00)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else datetime.fromisoformat(value + "T00:00:00+08:00")
    local = value.astimezone(SHANGHAI) if value.tzinfo else value
    text = f"{local.year}年{local.month}月{local.day}日"
    return f"{text} {local:%H:%M}" if with_time else text


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in (never another site: no scheme, no //host, no backslash)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    return value


def to_sign_in(next_path: str, reason: str | None = None) -> RedirectResponse:
    query = f"next={quote(safe_next(next_path))}" + (f"&reason={reason}" if reason else "")
    return RedirectResponse(f"/sign-in?{query}", status_code=303)


def path_of(request: Request) -> str:
    """The page to come back to after sign-in: this page (a GET), or the page a form was posted from."""
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc == request.url.netloc
        return safe_next(referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class Portal:
    """The portal's settings, templates and session key, and the page helpers every router uses."""

    def __init__(self, settings: PortalSettings, *, session_key: str, templates: Jinja2Templates) -> None:
        self.settings, self.session_key, self.templates = settings, session_key, templates
        self.cookie_name = SECURE_COOKIE_NAME if settings.cookie_secure else COOKIE_NAME
        templates.env.filters["cn_date"] = cn_date
        templates.env.filters["activity_type"] = activity_type_label
        templates.env.filters["yuan"] = yuan

    # --- sessions ----------------------------------------------------------------------------------
    def session_of(self, request: Request) -> Session | None:
        return unseal(request.cookies.get(self.cookie_name), self.session_key,
                      ttl_seconds=self.settings.session_ttl_seconds)

    def store(self, response: Response, session: Session) -> Response:
        response.set_cookie(self.cookie_name, seal(session, self.session_key),
                            max_age=self.settings.session_ttl_seconds, path="/", secure=self.settings.cookie_secure,
                            httponly=True, samesite="lax")
        return response

    def forget(self, response: Response) -> Response:
        response.delete_cookie(self.cookie_name, path="/", secure=self.settings.cookie_secure, httponly=True,
                               samesite="lax")
        return response

    def signed_in(self, request: Request, *roles: str) -> Session:
        """The session of a signed-in person with one of `roles` (any role if none are named)."""
        session = self.session_of(request)
        if session is None or not session.signed_in(time.time()):
            raise SignInRequired(path_of(request), expired=expired(session))
        assert session.user is not None and session.token is not None
        if roles and not any(role in session.user.roles for role in roles):
            raise PageError(403, "forbidden", "无权查看此页面", "此页面仅供" + "、".join(
                ROLE_LABELS.get(r, r) for r in roles) + "使用。")
        return session

    # --- pages and forms ---------------------------------------------------------------------------
    def page(self, request: Request, template: str, session: Session | None, *, http_status: int = 200,
             **context: Any) -> HTMLResponse:
        user = session.user if session is not None and session.signed_in(time.time()) else None
        response = self.templates.TemplateResponse(
            request, template, {"user": user, "csrf": session.csrf if session else None,
                                "dev_sign_in": self.settings.dev_sign_in, "oidc": self.settings.oidc_configured,
                                **context},
            status_code=http_status)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def form_of(self, request: Request, *, max_fields: int = 50) -> dict[str, str]:
        """An urlencoded form body (the kind the portal's forms send but those with a file), at most MAX_FORM_BYTES
        and `max_fields` fields (the year's plan is a grid of months and activity types)."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise PageError(415, "unsupported_media_type", "不支持的表单格式", "请通过页面上的表单提交。")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise PageError(413, "payload_too_large", "表单内容过大", None)
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PageError(400, "bad_request", "表单格式错误", "请通过页面上的表单提交。") from exc

    def checked(self, session: Session | None, form: dict[str, str]) -> Session:
        """The session whose CSRF token the form carries; a 403 page (nothing done) otherwise."""
        if not csrf_ok(session, form.get(CSRF_FIELD)):
            raise PageError(403, "csrf_failed", "表单已失效，未执行任何操作",
                            "这个表单来自已过期的页面或其他网站。请返回重新打开页面后再提交。")
        assert session is not None
        return session

    async def signed_form(self, request: Request, *roles: str, max_fields: int = 50,
                          ) -> tuple[Session, dict[str, str]]:
        """A form posted by a signed-in person with one of `roles`, its CSRF token checked."""
        session = self.signed_in(request, *roles)
        form = await self.form_of(request, max_fields=max_fields)
        return self.checked(session, form), form

    async def signed_upload(self, request: Request, *roles: str,
                            ) -> tuple[Session, dict[str, str], dict[str, Upload]]:
        """A form with a file (`enctype="multipart/form-data"`) posted by a signed-in person with one of `roles`,
        its CSRF token checked before anything is sent on."""
        session = self.signed_in(request, *roles)
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip() != "multipart/form-data":
            raise PageError(415, "unsupported_media_type", "不支持的表单格式", "请通过页面上的表单提交。")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise PageError(413, "payload_too_large", "文件过大", "文件不能超过 5 MB。")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise PageError(413, "payload_too_large", "文件过大", "文件不能超过 5 MB。")
            chunks.append(chunk)
        fields, files = parse_multipart(content_type, b"".join(chunks))
        return self.checked(session, fields), fields, files


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


ROLE_LABELS = {
    "bureau_admin": "市司法局管理员", "district_bureau": "区市司法局", "procuratorate": "检察院",
    "supervisor": "人民监督员", "finance": "财务人员", "auditor": "审计人员", "service": "服务账号",
}

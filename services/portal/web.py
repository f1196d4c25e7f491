"""What every page of the portal does the same way: its session, its template, its form, its refusals.

One `Portal` per app (in `app.state.portal`); the routers of the console (console.py) and of the
supervisor's pages (me.py) use it through `portal_of(request)`:
- `signed_in(request, *roles)`: the session of a signed-in person with one of the roles; otherwise back to
  sign-in with this page remembered (`SignInRequired`), or a 403 page naming what is missing;
- `page(...)`: a template rendered with the person, their CSRF token and `no-store`;
- `form(request)`: an urlencoded form whose CSRF token is this session's (a 403 page, nothing done, otherwise).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

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


class PageError(Exception):
    """A refusal shown as a page: HTTP status, stable code, Chinese title and detail."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None) -> None:
        super().__init__(f"{code}: {title}")
        self.status, self.code, self.title, self.detail = status, code, title, detail


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

    async def form_of(self, request: Request) -> dict[str, str]:
        """An urlencoded form body (the only kind the portal's forms send), at most MAX_FORM_BYTES."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise PageError(415, "unsupported_media_type", "不支持的表单格式", "请通过页面上的表单提交。")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise PageError(413, "payload_too_large", "表单内容过大", None)
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PageError(400, "bad_request", "表单格式错误", "请通过页面上的表单提交。") from exc

    def checked(self, session: Session | None, form: dict[str, str]) -> Session:
        """The session whose CSRF token the form carries; a 403 page (nothing done) otherwise."""
        if not csrf_ok(session, form.get(CSRF_FIELD)):
            raise PageError(403, "csrf_failed", "表单已失效，未执行任何操作",
                            "这个表单来自已过期的页面或其他网站。请返回重新打开页面后再提交。")
        assert session is not None
        return session

    async def signed_form(self, request: Request, *roles: str) -> tuple[Session, dict[str, str]]:
        """A form posted by a signed-in person with one of `roles`, its CSRF token checked."""
        session = self.signed_in(request, *roles)
        form = await self.form_of(request)
        return self.checked(session, form), form


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


ROLE_LABELS = {
    "bureau_admin": "市司法局管理员", "district_bureau": "区市司法局", "procuratorate": "检察院",
    "supervisor": "人民监督员", "finance": "财务人员", "auditor": "审计人员", "service": "服务账号",
}

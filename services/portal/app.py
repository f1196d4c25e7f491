"""The portal's FastAPI app: server-rendered Chinese pages (Jinja2), a backend-for-frontend of the five services.

- `/verify` (public, R11.1, DRAW.md "Receipt and verifiers"): a receipt is recomputed in the browser
  (static/receipt-verify.js); signed-in readers may also fetch one by draw id with their own token.
- `/sign-in`, `/sign-out`: demo personas in development (the portal mints the persona's token with the
  dev stack's key file), OpenID Connect in production (services/portal/oidc.py).
- `/`: who you are and, for the bureau's roles, the to-do counts of every service's GET /deadlines.
No database: the session is a sealed cookie (sessions.py). Start it with `python -m shared.serve portal`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal import console, documents, finance_pages, me, oidc, todo
from services.portal.backend import SERVICE_NAMES, Backend, ServiceError
from services.portal.config import PortalSettings
from services.portal.sessions import CSRF_FIELD, Session, User, expired
from services.portal.web import (
    ROLE_LABELS,
    PageError,
    Portal,
    SignInRequired,
    safe_next,
    to_sign_in,
)
from services.selection.draw.algorithm import ALG
from shared.errors import HTTP_TITLES, problem_response
from shared.observability import CorrelationMiddleware, Metrics, configure_logging
from shared.tokens import DEV_PERSONAS, load_key_file, mint_persona, pick_supervisor, with_real_supervisor

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# No inline script or style anywhere: the pages need nothing but their own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
STATE_LABELS = {"overdue": "已逾期", "due": "今日到期", "upcoming": "即将到期"}
# who may read a receipt from selection (services/selection/requests/router.py READERS, people only)
RECEIPT_READERS = ("bureau_admin", "district_bureau", "procuratorate", "auditor")


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    # the services' log format (tracebacks through safe_traceback), and their correlation ids: a page's calls to
    # the services carry the page request's X-Correlation-ID
    configure_logging("portal", level=settings.log_level, json_logs=settings.log_json)
    if settings.portal_session_key is not None:
        session_key = settings.portal_session_key.get_secret_value()
    elif settings.environment == "production":
        raise RuntimeError("PORTAL_SESSION_KEY is required in production (a Fernet key: see services/portal/README.md)")
    else:
        session_key = oidc.new_fernet_key()  # development without the dev stack: sessions end with the process
        log.warning("PORTAL_SESSION_KEY not set: using a key that lives as long as this process")
    private_key = load_key_file(settings.dev_key_file)[0] if settings.dev_sign_in else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backend = Backend(settings.service_urls, timeout=settings.service_timeout_seconds)
        app.state.oidc = oidc.Client(settings) if settings.oidc_configured else None
        try:
            yield
        finally:
            await app.state.backend.close()
            if app.state.oidc is not None:
                await app.state.oidc.close()

    app = FastAPI(title="人民监督员信息系统 门户", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(CorrelationMiddleware, metrics=Metrics("portal"))
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(site_name=settings.site_name, csrf_field_name=CSRF_FIELD, role_labels=ROLE_LABELS,
                                 state_labels=STATE_LABELS)
    portal = app.state.portal = Portal(settings, session_key=session_key, templates=templates)
    session_of, store, forget, page = portal.session_of, portal.store, portal.forget, portal.page
    form_of, checked = portal.form_of, portal.checked
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(console.router)
    app.include_router(finance_pages.router)
    app.include_router(me.router)
    app.include_router(documents.router)

    def error_page(request: Request, status: int, code: str, title: str, detail: str | None) -> Response:
        if "text/html" not in request.headers.get("accept", "text/html"):
            response = problem_response(status, code, title, detail, request.url.path)
        else:
            response = page(request, "error.html", session_of(request), http_status=status,
                            error={"status": status, "code": code, "title": title, "detail": detail})
        # an unexpected error's answer is made outside the middleware below: it gets the headers here
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        response = to_sign_in(exc.next_path, "expired" if exc.expired else None)
        return forget(response) if exc.expired else response

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc.status, exc.code, exc.title, exc.detail)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return error_page(request, exc.status if exc.status < 500 else 502, exc.code, exc.title, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code, title = HTTP_TITLES.get(exc.status_code, ("http_error", "请求无法处理"))
        detail = "您访问的页面不存在，请检查网址。" if exc.status_code == 404 else None
        return error_page(request, exc.status_code, code, title, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
        return error_page(request, 500, "internal_error", "门户内部错误",
                          "请稍后重试；如果问题持续，请联系系统管理员。")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # --- pages -----------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        session = session_of(request)
        if expired(session):  # back to sign-in, this page remembered
            return forget(to_sign_in("/", "expired"))
        if session is None or not session.signed_in(time.time()):
            return page(request, "home.html", session, active="home")
        user = session.user
        assert user is not None and session.token is not None
        board = None
        query = todo.deadline_query(user.roles, user.district)
        if query is not None:
            answers = await request.app.state.backend.get_each(
                [s for s in SERVICE_NAMES if s in settings.service_urls], "/deadlines", session.token, query)
            board = {"rows": [], "errors": []}
            for service, answer in answers.items():
                if isinstance(answer, ServiceError):
                    if answer.status != 404:  # a service without GET /deadlines has nothing to show
                        board["errors"].append(answer)
                else:
                    board["rows"].extend(todo.counts_per_rule(service, answer))
        return page(request, "home.html", session, active="home", board=board, service_names=SERVICE_NAMES)

    @app.get("/verify", response_class=HTMLResponse, summary="抽选凭证核验（公开，无需登录）")
    async def verify_page(request: Request, draw_id: str | None = None) -> Response:
        """R11.1: anyone re-checks a draw receipt in the browser, with the stand-alone verifier's checks."""
        session = session_of(request)
        signed_in = session is not None and session.signed_in(time.time())
        user = session.user if signed_in and session else None
        may_fetch = user is not None and any(r in RECEIPT_READERS for r in user.roles)
        receipt_text, fetch_error = None, None
        if draw_id is not None:
            if not may_fetch:
                if expired(session):
                    return forget(to_sign_in(f"/verify?draw_id={quote(draw_id)}", "expired"))
                raise PageError(403, "forbidden", "按编号获取凭证需要登录",
                                "抽选凭证含人民监督员的化名编号和联络记录，只向有权查看的人员提供；公众请上传承办机关提供的凭证文件。")
            try:
                uuid.UUID(draw_id)
            except ValueError:
                fetch_error = {"title": "抽选编号格式错误",
                               "detail": "抽选编号应为 UUID，例如 5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21。"}
            else:
                try:
                    receipt = await request.app.state.backend.get("selection", f"/draws/{draw_id}/receipt",
                                                                  session.token)
                    receipt_text = json.dumps(receipt, ensure_ascii=False, indent=2)
                except ServiceError as error:
                    fetch_error = {"title": error.title, "detail": error.detail}
        return page(request, "verify.html", session, active="verify", alg=ALG, may_fetch=may_fetch,
                    draw_id=draw_id or "", receipt_text=receipt_text, fetch_error=fetch_error)

    @app.get("/verify/", include_in_schema=False)
    async def verify_slash() -> RedirectResponse:
        return RedirectResponse("/verify", status_code=308)

    # --- sign-in and sign-out ------------------------------------------------------------------------
    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/", reason: str | None = None) -> Response:
        session = session_of(request)
        if session is None or expired(session):
            session = Session()  # anonymous: only its CSRF token, for the form below
        response = page(request, "sign_in.html", session, active="sign-in", next=safe_next(next),
                        expired=reason == "expired", personas=DEV_PERSONAS if settings.dev_sign_in else [])
        return store(response, session)

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        """Development only: sign in as a demo persona; the portal mints its token server-side."""
        form = await form_of(request)
        checked(session_of(request), form)
        if not settings.dev_sign_in or private_key is None:
            raise PageError(404, "not_found", "开发登录未启用", "生产环境请通过统一身份认证登录。")
        persona = next((p for p in DEV_PERSONAS if p.subject == form.get("persona")), None)
        if persona is None:
            raise PageError(422, "validation_error", "请选择一个演示身份", "所选身份不存在，请返回重新选择。")
        if chosen := form.get("supervisor_id", "").strip():  # development: act as any supervisor of the roster
            if persona.supervisor_id is None:
                raise PageError(422, "validation_error", "只有人民监督员身份可以指定编号", None)
            try:
                persona = dataclasses.replace(persona, supervisor_id=str(uuid.UUID(chosen)))
            except ValueError as exc:
                raise PageError(422, "validation_error", "人民监督员编号格式错误",
                                "编号应为 UUID，可在名册或联络名单中查到。") from exc
        elif persona.supervisor_id is not None and "registry" in settings.service_urls:
            # the demo supervisor stands for a real person of the roster, as in make run's banner (issue 14)
            picked = await asyncio.to_thread(pick_supervisor, settings.service_urls["registry"], private_key)
            persona = with_real_supervisor([persona], picked)[0]
        expires_at = int(time.time()) + settings.session_ttl_seconds
        token = mint_persona(private_key, persona, ttl_seconds=settings.session_ttl_seconds,
                             issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        user = User(persona.subject, persona.name, tuple(r.value for r in persona.roles), persona.district,
                    persona.office, persona.supervisor_id)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        return store(response, Session().with_user(user, token, expires_at))

    @app.get("/auth/oidc")
    async def oidc_start(request: Request, next: str = "/") -> Response:
        """Production sign-in: to the identity provider (authorization code flow with PKCE, state and nonce)."""
        client: oidc.Client | None = request.app.state.oidc
        if client is None:
            raise PageError(404, "not_found", "统一身份认证未配置", "请联系系统管理员配置 OIDC_ISSUER 等参数。")
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "verifier": secrets.token_urlsafe(48), "next": safe_next(next)}
        url = await client.authorization_url(pending)
        return store(RedirectResponse(url, status_code=303), Session(pending=pending))

    @app.get("/auth/callback")
    async def oidc_callback(request: Request, code: str | None = None, state: str | None = None,
                            error: str | None = None) -> Response:
        client: oidc.Client | None = request.app.state.oidc
        session = session_of(request)
        if client is None:
            raise PageError(404, "not_found", "统一身份认证未配置", None)
        pending = session.pending if session is not None else None
        if error or not code or not pending or not state or not secrets.compare_digest(state, pending["state"]):
            raise PageError(400, "oidc_failed", "统一身份认证未完成", "登录请求已失效或被拒绝，请重新登录。")
        try:
            user, token, expires_at = await client.finish(code, pending)
        except oidc.SignInFailed as exc:
            raise PageError(401, "oidc_failed", "统一身份认证未通过", exc.reason) from exc
        response = RedirectResponse(pending["next"], status_code=303)
        return store(response, Session().with_user(user, token, expires_at))

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        form = await form_of(request)
        checked(session_of(request), form)
        return forget(RedirectResponse("/?signed_out=1", status_code=303))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready as soon as it serves: the portal has no database or broker; each page names a service that is down."""
        return JSONResponse({"status": "ok"})

    return app

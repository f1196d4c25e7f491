"""The portal's sessions, CSRF and sign-in, through its real ASGI app (no browser): what a forged request gets."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from cryptography.fernet import Fernet

from services.portal.app import create_app
from services.portal.sessions import COOKIE_NAME, SECURE_COOKIE_NAME, Session, User, seal, unseal
from tests.integration.portal.helpers import KEY, csrf_of, settings, signed_in


async def test_csrf_a_sign_in_without_the_forms_token_is_refused_and_signs_nobody_in(client):
    await client.get("/sign-in")  # the anonymous session exists, its token is not sent
    for data in ({"persona": "dev-bureau-admin"}, {"persona": "dev-bureau-admin", "csrf_token": "forged"}):
        r = await client.post("/sign-in", data=data)
        assert r.status_code == 403 and "表单已失效，未执行任何操作" in r.text
        assert "set-cookie" not in r.headers
    assert "您好" not in (await client.get("/")).text


async def test_csrf_a_sign_out_without_the_token_is_refused_and_the_session_stays(client):
    await signed_in(client)
    r = await client.post("/sign-out", data={"next": "/"})
    assert r.status_code == 403 and "csrf_failed" in r.text
    assert "您好，市司法局管理员" in (await client.get("/")).text
    token = csrf_of((await client.get("/")).text)
    r = await client.post("/sign-out", data={"csrf_token": token})
    assert r.status_code == 303 and f'{COOKIE_NAME}=""' in r.headers["set-cookie"]
    client.cookies.clear()
    assert "您好" not in (await client.get("/")).text


async def test_every_post_form_of_every_page_carries_the_csrf_token(client):
    pages = ["/", "/verify", "/sign-in"]
    anonymous = [(await client.get(p)).text for p in pages]
    await signed_in(client)
    signed = [(await client.get(p)).text for p in pages]
    forms = [f for html in anonymous + signed for f in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S)]
    posts = [f for f in forms if re.search(r'method="post"', f)]
    assert len(posts) >= 4  # the sign-in form, the sign-out form of three signed-in pages
    assert all('name="csrf_token"' in f for f in posts)


async def test_the_session_cookie_is_sealed_httponly_samesite_and_holds_the_token_unreadably(client):
    await signed_in(client)
    value = client.cookies[COOKIE_NAME]
    assert "eyJ" not in value  # the JWT is encrypted, not merely signed
    session = unseal(value, KEY, ttl_seconds=60)
    assert session.user.roles == ("bureau_admin",) and session.token.startswith("eyJ")
    home = await client.get("/")
    assert session.token not in home.text and "Cache-Control" in home.headers


async def test_a_tampered_or_foreign_cookie_is_no_session(client):
    await signed_in(client)
    value = client.cookies[COOKIE_NAME]
    client.cookies.set(COOKIE_NAME, value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    assert "您好" not in (await client.get("/")).text
    other = seal(Session(user=User("x", "冒充者", ("bureau_admin",)), token="t", expires_at=int(time.time()) + 99),
                 Fernet.generate_key().decode())
    client.cookies.set(COOKIE_NAME, other)
    assert "冒充者" not in (await client.get("/")).text


async def test_an_expired_session_goes_back_to_sign_in_with_the_page_remembered(client):
    stale = Session(user=User("dev-bureau-admin", "市司法局管理员", ("bureau_admin",)), token="expired-token",
                    expires_at=int(time.time()) - 1)
    client.cookies.set(COOKIE_NAME, seal(stale, KEY))
    r = await client.get("/verify", params={"draw_id": "5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"})
    assert r.status_code == 303
    assert r.headers["location"] == ("/sign-in?next=/verify%3Fdraw_id%3D5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"
                                     "&reason=expired")
    page = await client.get(r.headers["location"])
    assert "登录已过期" in page.text
    assert await signed_in(client, next_path="/verify?draw_id=5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21") == \
        "/verify?draw_id=5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil"])
async def test_sign_in_never_sends_anyone_to_another_site(client, target):
    assert await signed_in(client, next_path=target) == "/"


async def test_a_signed_in_reader_fetching_a_receipt_from_a_service_that_is_down_sees_which_one(client):
    await signed_in(client)
    r = await client.get("/verify", params={"draw_id": "5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"})
    assert r.status_code == 200 and "随机抽选服务暂不可用" in r.text and "Traceback" not in r.text
    r = await client.get("/verify", params={"draw_id": "not-a-uuid"})
    assert "抽选编号格式错误" in r.text


async def test_the_public_may_not_fetch_a_receipt_by_draw_id(client):
    r = await client.get("/verify", params={"draw_id": "5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21"})
    assert r.status_code == 403 and "按编号获取凭证需要登录" in r.text


async def test_bad_input_gets_problem_json_when_html_is_not_asked_for(client):
    r = await client.get("/no-such-page", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found" and r.json()["title"] == "资源不存在"
    await client.get("/sign-in")
    r = await client.post("/sign-in", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415 and "不支持的表单格式" in r.text
    token = csrf_of((await client.get("/sign-in")).text)
    r = await client.post("/sign-in", data={"persona": "nobody", "csrf_token": token})
    assert r.status_code == 422 and "请选择一个演示身份" in r.text


async def test_production_offers_no_demo_personas_and_needs_a_session_key(tmp_path):
    with pytest.raises(RuntimeError, match="PORTAL_SESSION_KEY"):
        create_app(settings(tmp_path, environment="production", portal_session_key=None))
    app = create_app(settings(tmp_path, environment="production", cookie_secure=True))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://portal") as c:
            page = await c.get("/sign-in")
            assert "演示身份" not in page.text and "登录尚未配置" in page.text
            cookie = page.headers["set-cookie"]
            assert cookie.startswith(f"{SECURE_COOKIE_NAME}=") and "Secure" in cookie and "HttpOnly" in cookie
            assert "SameSite=lax" in cookie and "Path=/" in cookie and "Domain" not in cookie
            csrf = unseal(c.cookies[SECURE_COOKIE_NAME], KEY, ttl_seconds=60).csrf  # a valid token: still refused
            r = await c.post("/sign-in", data={"persona": "dev-bureau-admin", "csrf_token": csrf})
            assert r.status_code == 404 and "set-cookie" not in r.headers


async def test_a_page_keeps_the_callers_correlation_id_for_its_service_calls(client):
    r = await client.get("/", headers={"X-Correlation-ID": "corr-portal-1"})
    assert r.headers["X-Correlation-ID"] == "corr-portal-1"
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")

"""OpenID Connect sign-in against a small local identity provider (a real HTTP server in a thread).

The stand-in does what a provider does for the authorization code flow: discovery, /authorize (remembers the
PKCE challenge, nonce and redirect), /token (checks the client's secret and the PKCE verifier, issues an ID
token for the client and an access token for the services, both EdDSA-signed), /jwks.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
import pytest
import uvicorn
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from services.portal.app import create_app
from services.portal.config import PortalSettings
from services.portal.sessions import COOKIE_NAME
from shared.devstack.infra import free_port
from shared.tokens import generate_dev_keypair, mint, public_jwk

CLIENT_ID, CLIENT_SECRET = "portal", "s3cret"


def provider_app(issuer: str, private_pem: str, public_pem: str, claims: dict) -> FastAPI:
    app = FastAPI()
    codes: dict[str, dict] = {}
    app.state.last_token_request = None

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict:
        return {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize", "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks", "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"]}

    @app.get("/jwks")
    async def jwks() -> dict:
        return {"keys": [public_jwk(public_pem)]}

    @app.get("/authorize")
    async def authorize(client_id: str, redirect_uri: str, state: str, nonce: str, code_challenge: str,
                        code_challenge_method: str, response_type: str, scope: str) -> RedirectResponse:
        assert client_id == CLIENT_ID and response_type == "code" and code_challenge_method == "S256"
        assert "openid" in scope.split()
        code = secrets.token_urlsafe(16)
        codes[code] = {"challenge": code_challenge, "nonce": nonce, "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}  # no python-multipart here
        grant_type, code, code_verifier, redirect_uri = (form.get(k, "") for k in
                                                         ("grant_type", "code", "code_verifier", "redirect_uri"))
        basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
        pending = codes.pop(code, None)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if basic != f"{CLIENT_ID}:{CLIENT_SECRET}" or pending is None or challenge != pending["challenge"] \
                or grant_type != "authorization_code" or redirect_uri != pending["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        now = int(time.time())
        id_token = jwt.encode({"iss": issuer, "aud": CLIENT_ID, "sub": claims["sub"], "iat": now, "exp": now + 300,
                               "nonce": pending["nonce"]}, key, algorithm="EdDSA",
                              headers={"kid": public_jwk(public_pem)["kid"]})
        access_token = mint(private_pem, subject=claims["access_sub"], roles=claims["roles"], name="王文登",
                            district=claims.get("district"), ttl_seconds=600)
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": 600,
                             "id_token": id_token})

    return app


class Served:
    def __init__(self, app: FastAPI, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def oidc_world(tmp_path):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    private_pem, public_pem = generate_dev_keypair()
    claims = {"sub": "u-1001", "access_sub": "u-1001", "roles": ["district_bureau"], "district": "文登区"}
    with Served(provider_app(issuer, private_pem, public_pem, claims), port):
        settings = PortalSettings(environment="production", portal_session_key=Fernet.generate_key().decode(),
                                  cookie_secure=False, oidc_issuer=issuer, oidc_client_id=CLIENT_ID,
                                  oidc_client_secret=CLIENT_SECRET, oidc_redirect_uri="http://portal/auth/callback",
                                  service_urls={})
        yield settings, claims


async def round_trip(settings: PortalSettings, next_path: str = "/verify") -> tuple[httpx.Response, httpx.AsyncClient]:
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    portal = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal",
                               headers={"accept": "text/html"})
    portal._lifespan = lifespan  # closed by the test
    start = await portal.get("/auth/oidc", params={"next": next_path})
    assert start.status_code == 303, start.text
    authorize = urlparse(start.headers["location"])
    query = parse_qs(authorize.query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    assert at_provider.status_code == 302
    callback = urlparse(at_provider.headers["location"])
    return await portal.get(f"{callback.path}?{callback.query}"), portal


async def close(portal: httpx.AsyncClient) -> None:
    await portal.aclose()
    await portal._lifespan.__aexit__(None, None, None)


async def test_oidc_sign_in_checks_both_tokens_and_keeps_the_access_token_in_the_sealed_cookie(oidc_world):
    settings, _ = oidc_world
    answer, portal = await round_trip(settings)
    try:
        assert answer.status_code == 303 and answer.headers["location"] == "/verify", answer.text
        assert "eyJ" not in portal.cookies[COOKIE_NAME]
        home = await portal.get("/")
        assert "您好，王文登" in home.text and "区市司法局" in home.text and "文登区" in home.text
    finally:
        await close(portal)


async def test_oidc_a_callback_with_another_state_is_refused(oidc_world):
    settings, _ = oidc_world
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal",
                                     headers={"accept": "text/html"}) as portal:
            await portal.get("/auth/oidc")
            r = await portal.get("/auth/callback", params={"code": "x", "state": "forged"})
            assert r.status_code == 400 and "统一身份认证未完成" in r.text and "set-cookie" not in r.headers


async def test_oidc_an_access_token_for_someone_else_is_refused(oidc_world):
    settings, claims = oidc_world
    claims["access_sub"] = "u-2002"  # the provider mixed up two people: the portal signs neither in
    answer, portal = await round_trip(settings)
    try:
        assert answer.status_code == 401 and "不属于同一个人" in answer.text
        assert "您好" not in (await portal.get("/")).text
    finally:
        await close(portal)

"""OpenID Connect sign-in for production: authorization code flow with PKCE (S256), state and nonce (authlib).

The identity provider issues two tokens: the ID token (for the portal: who signed in, bound to this
sign-in by its nonce) and the access token (for the services: `aud` = JWT_AUDIENCE, signed with a key of the
provider's JWKS, carrying the services' claims `roles`, `district`, `office`, `supervisor_id`). The
provider maps its own groups and attributes to those claims (a claim mapper per client); the portal does not
re-sign anything: it checks the access token exactly as every service does (shared.auth.TokenVerifier
with the provider's JWKS) and keeps it in the sealed session cookie, so the browser never holds it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt as pyjwt
from cryptography.fernet import Fernet

from services.portal.config import PortalSettings
from services.portal.sessions import User
from shared.auth import TokenVerifier
from shared.errors import ProblemError


class SignInFailed(Exception):
    """The provider's answer could not be accepted; `reason` is shown (in Chinese) on the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_fernet_key() -> str:
    return Fernet.generate_key().decode()


class Client:
    """The portal as an OIDC client of one provider (its discovery document read once, lazily)."""

    def __init__(self, settings: PortalSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_uri
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
        self._oauth = AsyncOAuth2Client(
            client_id=settings.oidc_client_id, client_secret=secret, scope=settings.oidc_scope,
            redirect_uri=settings.oidc_redirect_uri, code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            timeout=settings.service_timeout_seconds, transport=transport)
        self._metadata: dict[str, Any] | None = None
        self._verifier: TokenVerifier | None = None
        self._jwks: pyjwt.PyJWKClient | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            try:
                answer = await self._oauth.request("GET", f"{self.issuer}/.well-known/openid-configuration",
                                                  withhold_token=True)  # no token yet: a public document
                answer.raise_for_status()
                metadata = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ProblemError(503, "oidc_unavailable", "统一身份认证服务暂不可用",
                                   "无法读取身份认证服务的配置，请稍后重试。") from exc
            if metadata.get("issuer", "").rstrip("/") != self.issuer:
                raise ProblemError(503, "oidc_misconfigured", "统一身份认证配置有误",
                                   "身份认证服务声明的 issuer 与 OIDC_ISSUER 不一致。")
            self._metadata = metadata
            self._jwks = pyjwt.PyJWKClient(metadata["jwks_uri"], lifespan=300, timeout=5)
            self._verifier = TokenVerifier(jwks_client=self._jwks, issuer=self.settings.jwt_issuer,
                                           audience=self.settings.jwt_audience)
        return self._metadata

    async def authorization_url(self, pending: dict[str, str]) -> str:
        """Where to send the browser: the provider's sign-in page for this state, nonce and PKCE verifier."""
        metadata = await self.metadata()
        url, _ = self._oauth.create_authorization_url(
            metadata["authorization_endpoint"], state=pending["state"], nonce=pending["nonce"],
            code_verifier=pending["verifier"])
        return url

    async def finish(self, code: str, pending: dict[str, str]) -> tuple[User, str, int]:
        """Exchange the code; check the ID token (issuer, audience = this client, nonce, expiry) and the access
        token (as the services do). Returns (the user, the access token, its expiry)."""
        metadata = await self.metadata()
        try:
            tokens = await self._oauth.fetch_token(metadata["token_endpoint"], code=code,
                                                   code_verifier=pending["verifier"])
        except Exception as exc:  # authlib raises its own OAuthError or httpx errors: the sign-in simply failed
            raise SignInFailed(f"身份认证服务拒绝了登录（{type(exc).__name__}），请重新登录。") from exc
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not id_token or not access_token:
            raise SignInFailed("身份认证服务没有返回身份令牌和访问令牌。")
        assert self._jwks is not None and self._verifier is not None
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, id_token)  # blocking HTTP
            claims = pyjwt.decode(id_token, key, algorithms=["RS256", "ES256", "EdDSA"], issuer=metadata["issuer"],
                                  audience=self.settings.oidc_client_id, leeway=30,
                                  options={"require": ["exp", "iat", "sub", "nonce"]})
        except pyjwt.PyJWTError as exc:
            raise SignInFailed(f"身份令牌无效（{type(exc).__name__}）。") from exc
        if claims.get("nonce") != pending["nonce"]:
            raise SignInFailed("身份令牌不属于本次登录（nonce 不符）。")
        try:
            principal = await self._verifier.verify(access_token)
        except ProblemError as exc:
            raise SignInFailed(f"访问令牌无效：{exc.detail or exc.title}") from exc
        if principal.subject != claims["sub"]:
            raise SignInFailed("访问令牌与身份令牌不属于同一个人。")
        expires_at = int(pyjwt.decode(access_token, options={"verify_signature": False})["exp"])
        if expires_at <= time.time():
            raise SignInFailed("访问令牌已过期。")
        user = User(principal.subject, principal.name, tuple(sorted(r.value for r in principal.roles)),
                    principal.district, principal.office, principal.supervisor_id)
        return user, access_token, expires_at

    async def close(self) -> None:
        await self._oauth.aclose()

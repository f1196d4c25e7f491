"""Portal settings (environment variables). The portal has no database: sessions live in sealed cookies."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from shared.settings import DEFAULT_SERVICE_URLS


class PortalSettings(BaseSettings):
    """What the portal needs to run: the services' URLs, the session key and how people sign in."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "production"
    site_name: str = "人民监督员信息系统"
    # Base URL of every service the portal calls as a backend-for-frontend (the dev launcher sets SERVICE_URLS)
    service_urls: dict[str, str] = DEFAULT_SERVICE_URLS
    service_timeout_seconds: float = 3.0
    # Fernet key (urlsafe base64 of 32 random bytes: `python -c "from cryptography.fernet import Fernet;
    # print(Fernet.generate_key().decode())"`) that seals the session cookie. No default: production must set it.
    portal_session_key: SecretStr | None = None
    session_ttl_seconds: int = 8 * 3600
    # how often a request's page asks for its staffing (seats confirmed and pending) while it is open
    live_refresh_seconds: float = 10.0
    # Secure cookies (HTTPS only). Off only for http://127.0.0.1 in development and tests.
    cookie_secure: bool = True
    # Development sign-in (pick a demo persona): the dev stack's key file (.data/dev-keys.json); the portal
    # mints the persona's token with it, server-side. Never honoured in production.
    dev_key_file: Path | None = None
    jwt_issuer: str = DEFAULT_ISSUER
    jwt_audience: str = DEFAULT_AUDIENCE
    # OpenID Connect (production sign-in): the identity provider's issuer URL, this client's id and secret,
    # and the callback URL registered with the provider (https://<portal>/auth/callback).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_uri: str | None = None
    oidc_scope: str = "openid profile"
    log_json: bool = False
    log_level: str = "INFO"

    @property
    def dev_sign_in(self) -> bool:
        """The demo-persona sign-in page exists only outside production and with a dev key file."""
        return self.environment != "production" and self.dev_key_file is not None

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_redirect_uri)

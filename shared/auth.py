"""Bearer-JWT authentication and role/scope checks shared by every service.

Tokens are OAuth2 bearer JWTs carrying `roles` and the scope claims `district`, `office` and
`supervisor_id`. Nothing unsigned is ever accepted: with no key configured every request is refused.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import ProblemError
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

DEFAULT_ISSUER = "weihai-supervision"
DEFAULT_AUDIENCE = "weihai-supervision"
DEFAULT_ALGORITHMS = ("EdDSA", "RS256", "ES256")
REQUIRED_CLAIMS = ("sub", "roles", "iss", "aud", "exp", "iat")

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES256K", "ES384", "ES512", "ES521"})
EDDSA_ALGORITHMS = frozenset({"EdDSA"})
MIN_HMAC_SECRET_BYTES = 32


class Role(StrEnum):
    """A role carried in the token's `roles` claim."""

    BUREAU_ADMIN = "bureau_admin"  # 市司法局, city-wide
    DISTRICT_BUREAU = "district_bureau"  # 区市司法局, one district
    PROCURATORATE = "procuratorate"  # 检察院 office, one district
    SUPERVISOR = "supervisor"  # 人民监督员, own record only
    FINANCE = "finance"  # city-wide
    AUDITOR = "auditor"  # read-only, city-wide
    SERVICE = "service"  # service-to-service calls


CITYWIDE_ROLES = frozenset({Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE, Role.SERVICE})
DISTRICT_SCOPED_ROLES = frozenset({Role.DISTRICT_BUREAU, Role.PROCURATORATE})


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    subject: str
    name: str
    roles: frozenset[Role]
    district: str | None = None
    office: str | None = None
    supervisor_id: str | None = None

    def has(self, *roles: Role) -> bool:
        """True if the principal holds any of `roles`."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_citywide(self) -> bool:
        """True for roles that see every district."""
        return self.has(*CITYWIDE_ROLES)

    def can_see_district(self, district: str | None) -> bool:
        """True if the principal may read or act on data of `district`."""
        if self.is_citywide:
            return True
        if self.has(*DISTRICT_SCOPED_ROLES):
            # A scoped principal without a district sees nothing rather than everything.
            return self.district is not None and district == self.district
        return False

    def is_self(self, supervisor_id: object) -> bool:
        """True if the principal is the supervisor `supervisor_id` (ids may arrive as UUIDs)."""
        return (
            Role.SUPERVISOR in self.roles
            and self.supervisor_id is not None
            and supervisor_id is not None
            and str(supervisor_id) == self.supervisor_id
        )


def roles_of(values: Iterable[str]) -> frozenset[Role]:
    """Parse role names; ValueError on an unknown one."""
    return frozenset(Role(v) for v in values)


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    """A claim that is absent/null or a non-empty string; anything else is malformed."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"claim {name!r} must be a non-empty string")
    return value


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Build a Principal from already-verified claims; ValueError if they are malformed."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise ValueError("claim 'sub' must be a non-empty string")
    raw_roles = claims.get("roles")
    if not isinstance(raw_roles, list) or not raw_roles:
        raise ValueError("claim 'roles' must be a non-empty list")
    if not all(isinstance(r, str) for r in raw_roles):
        raise ValueError("claim 'roles' must hold role names only")
    principal = Principal(
        subject=subject,
        name=_optional_str(claims, "name") or subject,
        # An unknown role refuses the token: silently dropping it could hide a mis-issued one.
        roles=roles_of(raw_roles),
        district=_optional_str(claims, "district"),
        office=_optional_str(claims, "office"),
        supervisor_id=_optional_str(claims, "supervisor_id"),
    )
    # Scoped roles without their scope would be useless at best and ambiguous at worst.
    if principal.has(*DISTRICT_SCOPED_ROLES) and principal.district is None:
        raise ValueError("district_bureau/procuratorate tokens must carry 'district'")
    if principal.has(Role.SUPERVISOR) and principal.supervisor_id is None:
        raise ValueError("supervisor tokens must carry 'supervisor_id'")
    return principal


def _algorithms_for_key(key: object) -> frozenset[str]:
    """The JWS algorithms a public key can verify (so a header cannot pick another family)."""
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return EDDSA_ALGORITHMS
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EC_ALGORITHMS
    return frozenset()


def _prepare_static_key(key: str, algorithms: Sequence[str]) -> tuple[Any, list[str]]:
    """Load a PEM public key or an HMAC secret and the algorithms allowed with it."""
    if "-----BEGIN" in key:
        # Env vars and .env files often carry PEM with literal "\n".
        pem = key.replace("\\n", "\n").strip().encode()
        try:
            public_key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError("jwt_verify_key is PEM but not a supported public key") from exc
        allowed = [a for a in algorithms if a in _algorithms_for_key(public_key)]
        if not allowed:
            raise ValueError(f"jwt_algorithms {list(algorithms)} cannot be used with this key type")
        return public_key, allowed
    # Not PEM: an HMAC shared secret, only with HS* (never let an asymmetric alg near it).
    allowed = [a for a in algorithms if a in HMAC_ALGORITHMS]
    if not allowed:
        raise ValueError("jwt_verify_key is not a PEM public key and jwt_algorithms has no HS256")
    if len(key.encode()) < MIN_HMAC_SECRET_BYTES:
        raise ValueError(f"an HMAC jwt_verify_key must be at least {MIN_HMAC_SECRET_BYTES} bytes")
    return key.encode(), allowed


def _unauthenticated(detail: str, error: str | None = "invalid_token") -> ProblemError:
    """401 with the RFC 6750 challenge, so clients know to (re)acquire a token."""
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return ProblemError(
        401, "unauthenticated", "未认证或令牌无效", detail, headers={"WWW-Authenticate": challenge}
    )


def _not_configured() -> ProblemError:
    """401 for a service that has no way to verify tokens: refuse rather than trust."""
    return ProblemError(
        401, "auth_not_configured", "认证未配置", "服务未配置令牌校验密钥，已拒绝所有请求。",
        headers={"WWW-Authenticate": "Bearer"},
    )


class VerifiedTokenCache:
    """Tokens verified in the last few seconds (a client paging a list pays the signature check once).

    An entry lives at most `ttl` seconds and never past the token's own `exp`; only tokens the
    verifier accepted are kept. Cost of the cache: a key rotated out keeps working for ≤ ttl.
    """

    def __init__(self, *, ttl: float = 30.0, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        hit = self._entries.get(token)
        if hit is None:
            return None
        if hit[1] <= time.monotonic():
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return hit[0]

    def put(self, token: str, principal: Principal, *, expires_at: float) -> None:
        lifetime = min(self.ttl, expires_at - time.time())
        if lifetime <= 0:
            return
        self._entries[token] = (principal, time.monotonic() + lifetime)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class TokenVerifier:
    """Verifies bearer JWTs (static key or JWKS) and turns them into Principals."""

    def __init__(
        self,
        *,
        key: str | None = None,
        jwks_client: jwt.PyJWKClient | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        leeway_seconds: float = 30,
    ) -> None:
        if key and jwks_client is not None:
            raise ValueError("configure either jwt_verify_key or jwt_jwks_url, not both")
        if any(a.lower() == "none" for a in algorithms):
            raise ValueError("the 'none' algorithm is never accepted")
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._jwks = jwks_client
        self._verified = VerifiedTokenCache()
        self._key: Any = None
        self._algorithms: list[str] = []
        if key:
            self._key, self._algorithms = _prepare_static_key(key, algorithms)
        elif jwks_client is not None:
            # A JWKS is public: an HS* ("oct") key published there would let anyone sign.
            self._algorithms = [a for a in algorithms if a not in HMAC_ALGORITHMS]
            if not self._algorithms:
                raise ValueError("jwt_algorithms has no asymmetric algorithm for the JWKS")

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> "TokenVerifier":
        """Build the verifier the settings describe (or an unconfigured one that refuses all)."""
        key = settings.jwt_verify_key.get_secret_value() if settings.jwt_verify_key else None
        jwks_client = None
        if settings.jwt_jwks_url:
            # The key set is cached for 5 minutes and refetched on an unknown `kid`; per-key
            # caching stays off because it never expires and would keep a revoked key alive.
            jwks_client = jwt.PyJWKClient(settings.jwt_jwks_url, lifespan=300, timeout=5)
        return cls(
            key=key or None,
            jwks_client=jwks_client,
            algorithms=settings.jwt_algorithms,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    @property
    def configured(self) -> bool:
        """True if there is a key or a JWKS to verify with."""
        return self._key is not None or self._jwks is not None

    async def verify(self, token: str) -> Principal:
        """Verify `token` and return its Principal; ProblemError 401 (503 if JWKS is down)."""
        if not self.configured:
            raise _not_configured()
        if (cached := self._verified.get(token)) is not None:
            return cached
        try:
            if self._jwks is not None:
                # PyJWKClient does blocking HTTP; keep it off the event loop.
                key: Any = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            else:
                key = self._key
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            principal = principal_from_claims(claims)
            self._verified.put(token, principal, expires_at=float(claims["exp"]))
            return principal
        except jwt.ExpiredSignatureError as exc:
            raise _unauthenticated("令牌已过期，请重新登录。") from exc
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("JWKS endpoint unreachable: %s", exc)
            raise ProblemError(
                503, "auth_unavailable", "认证服务暂不可用", "暂时无法获取令牌校验公钥，请稍后重试。"
            ) from exc
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason goes to the log only: telling a forger which check failed helps them.
            log.info("bearer token refused: %s: %s", type(exc).__name__, exc)
            raise _unauthenticated("令牌无效。") from exc


# Declared only so OpenAPI (/docs) offers the Bearer scheme; the header is read in current_principal.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT", scheme_name="bearer")


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def current_principal(
    request: Request,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """FastAPI dependency: the verified caller, via `request.app.state.token_verifier`."""
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None or not verifier.configured:
        if verifier is None:
            log.error("app.state.token_verifier is not set; refusing every request")
        raise _not_configured()
    token = bearer_token(request)
    if token is None:
        raise _unauthenticated("请求缺少 Bearer 令牌。", error=None)
    return await verifier.verify(token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden(detail: str) -> ProblemError:
    """403 `forbidden` with a Chinese detail."""
    return ProblemError(403, "forbidden", "无权执行此操作", detail)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the Principal if it holds any of `roles`, else 403 `forbidden`."""
    if not roles:
        raise ValueError("require() needs at least one role")
    wanted = tuple(Role(r) for r in roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*wanted):
            raise forbidden(f"此操作需要以下角色之一：{'、'.join(wanted)}。")
        return principal

    return dependency


def ensure_district(principal: Principal, district: str | None) -> None:
    """Rule R2.1: district bureaus and procuratorates act only within their own district."""
    if principal.can_see_district(district):
        return
    if principal.has(*DISTRICT_SCOPED_ROLES):
        raise ProblemError(
            403, "R2.1", "超出本辖区范围",
            f"依据规则 R2.1，区级单位只能在本辖区内开展工作：您的辖区为{principal.district or '未知'}，"
            f"无权访问{district or '未指定辖区'}的数据。",
        )
    raise forbidden("您的角色无权访问辖区数据。")


def ensure_self_or(principal: Principal, supervisor_id: object, *roles: Role) -> None:
    """A supervisor may touch only their own record; holders of `roles` may touch any."""
    if principal.has(*roles) or principal.is_self(supervisor_id):
        return
    raise forbidden("仅本人或具有相应权限的用户可以访问该人民监督员的记录。")

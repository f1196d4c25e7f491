"""Bearer-JWT authentication, roles and scope rules (R2.1), dev tokens and their CLI. No DB needed."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI

from shared.auth import (
    CurrentPrincipal,
    Principal,
    Role,
    TokenVerifier,
    ensure_district,
    ensure_self_or,
    require,
)
from shared.errors import PROBLEM_JSON, ProblemError, install_problem_handlers
from shared.settings import CommonSettings
from shared.tokens import (
    DEV_PERSONAS,
    generate_dev_keypair,
    init_key_file,
    load_key_file,
    mint,
    mint_persona,
    public_jwk,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ISSUER = "weihai-supervision"
AUDIENCE = "weihai-supervision"

PRIVATE_PEM, PUBLIC_PEM = generate_dev_keypair()
OTHER_PRIVATE_PEM, _ = generate_dev_keypair()


# --- helpers -------------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid bureau_admin claims; `None` in overrides removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "u-1",
        "name": "张三",
        "roles": ["bureau_admin"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], private_pem: str = PRIVATE_PEM, **headers: Any) -> str:
    """An EdDSA token over exactly `payload` (no validation, unlike `mint`)."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return jwt.encode(payload, key, algorithm="EdDSA", headers=headers or None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj).encode())


def make_app(verifier: TokenVerifier | None) -> FastAPI:
    """A tiny app guarded like the real services."""
    app = FastAPI()
    install_problem_handlers(app)
    if verifier is not None:
        app.state.token_verifier = verifier

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {
            "subject": principal.subject,
            "name": principal.name,
            "roles": sorted(principal.roles),
            "district": principal.district,
            "office": principal.office,
            "supervisor_id": principal.supervisor_id,
        }

    @app.get("/admin")
    async def admin(
        principal: Annotated[Principal, Depends(require(Role.BUREAU_ADMIN))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    district_readers = require(
        Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU, Role.PROCURATORATE, Role.AUDITOR
    )

    @app.get("/districts/{district}")
    async def district(
        district: str, principal: Annotated[Principal, Depends(district_readers)]
    ) -> dict[str, str]:
        ensure_district(principal, district)
        return {"district": district}

    @app.get("/supervisors/{supervisor_id}")
    async def supervisor(supervisor_id: str, principal: CurrentPrincipal) -> dict[str, str]:
        ensure_self_or(principal, supervisor_id, Role.BUREAU_ADMIN, Role.AUDITOR)
        return {"supervisor_id": supervisor_id}

    return app


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(key=PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def app(verifier: TokenVerifier) -> FastAPI:
    return make_app(verifier)


async def get(
    app: FastAPI, path: str, token: str | None = None, authorization: str | None = None
) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path, headers=headers)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    return body


# --- authentication ------------------------------------------------------------------------------


async def test_valid_token_yields_principal(app: FastAPI) -> None:
    token = mint(
        PRIVATE_PEM, subject="p-9", roles=[Role.PROCURATORATE], name="检察官",
        district="环翠区", office="威海市人民检察院",
    )
    response = await get(app, "/me", token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "subject": "p-9",
        "name": "检察官",
        "roles": ["procuratorate"],
        "district": "环翠区",
        "office": "威海市人民检察院",
        "supervisor_id": None,
    }


async def test_missing_token_is_401_problem(app: FastAPI) -> None:
    response = await get(app, "/me")
    body = assert_problem(response, 401, "unauthenticated")
    assert body["title"] == "未认证或令牌无效"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"])
async def test_non_bearer_authorization_is_401(app: FastAPI, authorization: str) -> None:
    response = await get(app, "/me", authorization=authorization)
    assert_problem(response, 401, "unauthenticated")


def _tampered() -> str:
    header, _, signature = sign(claims(roles=["supervisor"], supervisor_id="s-1")).split(".")
    return f"{header}.{b64json(claims(roles=['bureau_admin']))}.{signature}"


def _alg_none() -> str:
    return f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims())}."


BAD_TOKENS = {
    "expired": lambda: sign(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
    "wrong_issuer": lambda: sign(claims(iss="someone-else")),
    "wrong_audience": lambda: sign(claims(aud="another-system")),
    "wrong_key": lambda: sign(claims(), OTHER_PRIVATE_PEM),
    "tampered_payload": _tampered,
    "alg_none": _alg_none,
    "alg_none_with_signature": lambda: _alg_none() + b64url(b"x"),
    "missing_exp": lambda: sign(claims(exp=None)),
    "missing_iat": lambda: sign(claims(iat=None)),
    "missing_sub": lambda: sign(claims(sub=None)),
    "missing_roles": lambda: sign(claims(roles=None)),
    "empty_roles": lambda: sign(claims(roles=[])),
    "roles_not_a_list": lambda: sign(claims(roles="bureau_admin")),
    "unknown_role": lambda: sign(claims(roles=["bureau_admin", "superuser"])),
    "district_bureau_without_district": lambda: sign(claims(roles=["district_bureau"])),
    "supervisor_without_id": lambda: sign(claims(roles=["supervisor"])),
    "district_not_a_string": lambda: sign(claims(roles=["district_bureau"], district=7)),
    "garbage": lambda: "not-a-jwt",
    "three_garbage_parts": lambda: "a.b.c",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_invalid_tokens_are_401(app: FastAPI, kind: str) -> None:
    response = await get(app, "/me", BAD_TOKENS[kind]())
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_role_is_401(app: FastAPI) -> None:
    response = await get(app, "/me", sign(claims(roles=["root"])))
    assert_problem(response, 401, "unauthenticated")


async def test_expired_token_says_so(app: FastAPI) -> None:
    token = sign(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
    body = assert_problem(await get(app, "/me", token), 401, "unauthenticated")
    assert "过期" in body["detail"]


async def test_small_clock_skew_is_tolerated(app: FastAPI) -> None:
    token = sign(claims(exp=int(time.time()) - 5))
    assert (await get(app, "/me", token)).status_code == 200


async def test_verifier_without_key_refuses_everything() -> None:
    app = make_app(TokenVerifier())
    body = assert_problem(await get(app, "/me", sign(claims())), 401, "auth_not_configured")
    assert body["title"] == "认证未配置"
    assert_problem(await get(app, "/me"), 401, "auth_not_configured")


async def test_app_without_verifier_refuses_everything() -> None:
    app = make_app(None)
    assert_problem(await get(app, "/me", sign(claims())), 401, "auth_not_configured")


async def test_verifier_from_settings() -> None:
    settings = CommonSettings(
        database_url="postgresql+asyncpg://u:p@localhost/db",
        kafka_bootstrap_servers="localhost:9092",
        field_encryption_key="x" * 44,
        field_hash_key="y" * 44,
        # As an env var or .env line would carry it.
        jwt_verify_key=PUBLIC_PEM.replace("\n", "\\n"),
    )
    app = make_app(TokenVerifier.from_settings(settings))
    assert (await get(app, "/me", sign(claims()))).status_code == 200


async def test_verifier_from_settings_without_key_is_not_configured() -> None:
    settings = CommonSettings(
        database_url="postgresql+asyncpg://u:p@localhost/db",
        kafka_bootstrap_servers="localhost:9092",
        field_encryption_key="x" * 44,
        field_hash_key="y" * 44,
        jwt_verify_key=None,
        jwt_jwks_url=None,
    )
    assert not TokenVerifier.from_settings(settings).configured


async def test_hs256_secret() -> None:
    secret = "s" * 40
    app = make_app(TokenVerifier(key=secret, algorithms=["HS256"]))
    assert (await get(app, "/me", jwt.encode(claims(), secret, algorithm="HS256"))).status_code == 200
    forged = jwt.encode(claims(), "t" * 40, algorithm="HS256")
    assert_problem(await get(app, "/me", forged), 401, "unauthenticated")
    # Only HS* with a secret: an EdDSA token must not be tried against it.
    assert_problem(await get(app, "/me", sign(claims())), 401, "unauthenticated")


async def test_public_key_cannot_be_used_as_hmac_secret() -> None:
    """Algorithm confusion: an HS256 token 'signed' with the RSA public PEM is refused."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    app = make_app(TokenVerifier(key=public_pem, algorithms=["RS256", "HS256"]))
    assert (await get(app, "/me", jwt.encode(claims(), rsa_key, algorithm="RS256"))).status_code == 200
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT'})}.{b64json(claims())}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    response = await get(app, "/me", f"{signing_input}.{b64url(mac)}")
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": PUBLIC_PEM, "algorithms": ["none"]},
        {"key": PUBLIC_PEM, "algorithms": ["EdDSA", "none"]},
        {"key": PUBLIC_PEM, "algorithms": ["RS256"]},  # key type cannot do any of them
        {"key": "s" * 40},  # a secret but no HS* algorithm
        {"key": "short", "algorithms": ["HS256"]},
        {"key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"},
        {"key": PRIVATE_PEM},  # a private key is not a verify key
        {"key": PUBLIC_PEM, "jwks_client": jwt.PyJWKClient("https://idp.invalid/jwks")},
    ],
)
def test_bad_verifier_configuration_fails_fast(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(**kwargs)


def test_openapi_advertises_bearer_scheme(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


# --- JWKS ----------------------------------------------------------------------------------------


class StaticJWKSClient(jwt.PyJWKClient):
    """A PyJWKClient serving a fixed JWKS document instead of fetching it (no network)."""

    def __init__(self, jwks: dict[str, Any] | Exception) -> None:
        super().__init__("https://idp.invalid/.well-known/jwks.json", cooldown_duration=0)
        self.jwks = jwks
        self.fetches = 0

    def fetch_data(self) -> Any:
        self.fetches += 1
        if isinstance(self.jwks, Exception):
            raise self.jwks
        return self.jwks


async def test_jwks_verifies_and_caches() -> None:
    client = StaticJWKSClient({"keys": [public_jwk(PUBLIC_PEM)]})
    app = make_app(TokenVerifier(jwks_client=client))
    token = mint(PRIVATE_PEM, subject="s-1", roles=["supervisor"], supervisor_id="s-1")
    for _ in range(3):
        response = await get(app, "/me", token)
        assert response.status_code == 200, response.text
    assert response.json()["supervisor_id"] == "s-1"
    assert client.fetches == 1


async def test_jwks_refuses_unknown_kid_and_wrong_key() -> None:
    app = make_app(TokenVerifier(jwks_client=StaticJWKSClient({"keys": [public_jwk(PUBLIC_PEM)]})))
    other = mint(OTHER_PRIVATE_PEM, subject="x", roles=["bureau_admin"])  # its own kid
    assert_problem(await get(app, "/me", other), 401, "unauthenticated")
    kid = public_jwk(PUBLIC_PEM)["kid"]
    forged = sign(claims(), OTHER_PRIVATE_PEM, kid=kid)  # right kid, wrong key
    assert_problem(await get(app, "/me", forged), 401, "unauthenticated")
    assert_problem(await get(app, "/me", sign(claims())), 401, "unauthenticated")  # no kid
    assert_problem(await get(app, "/me", _alg_none()), 401, "unauthenticated")


async def test_jwks_refuses_published_symmetric_key() -> None:
    """An `oct` key in a public JWKS would let anyone sign; HS* is never used with a JWKS."""
    secret = "s" * 40
    jwks = {"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": b64url(secret.encode())}]}
    verifier = TokenVerifier(jwks_client=StaticJWKSClient(jwks), algorithms=["EdDSA", "HS256"])
    token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "k1"})
    assert_problem(await get(make_app(verifier), "/me", token), 401, "unauthenticated")


async def test_jwks_unreachable_is_503() -> None:
    down = StaticJWKSClient(jwt.PyJWKClientConnectionError("connection refused"))
    app = make_app(TokenVerifier(jwks_client=down))
    token = mint(PRIVATE_PEM, subject="x", roles=["bureau_admin"])
    assert_problem(await get(app, "/me", token), 503, "auth_unavailable")


async def test_jwks_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda self: {"keys": [public_jwk(PUBLIC_PEM)]})
    settings = CommonSettings(
        database_url="postgresql+asyncpg://u:p@localhost/db",
        kafka_bootstrap_servers="localhost:9092",
        field_encryption_key="x" * 44,
        field_hash_key="y" * 44,
        jwt_jwks_url="https://idp.invalid/.well-known/jwks.json",
    )
    app = make_app(TokenVerifier.from_settings(settings))
    token = mint(PRIVATE_PEM, subject="a", roles=["auditor"])
    assert (await get(app, "/me", token)).json()["roles"] == ["auditor"]


# --- authorization -------------------------------------------------------------------------------


async def test_wrong_role_is_403(app: FastAPI) -> None:
    token = mint(PRIVATE_PEM, subject="f", roles=[Role.FINANCE])
    body = assert_problem(await get(app, "/admin", token), 403, "forbidden")
    assert body["title"] == "无权执行此操作"
    admin = mint(PRIVATE_PEM, subject="a", roles=[Role.BUREAU_ADMIN])
    assert (await get(app, "/admin", admin)).status_code == 200


async def test_r2_1_district_bureau_cannot_cross_district(app: FastAPI) -> None:
    token = mint(PRIVATE_PEM, subject="d", roles=[Role.DISTRICT_BUREAU], district="环翠区")
    assert (await get(app, "/districts/环翠区", token)).status_code == 200
    body = assert_problem(await get(app, "/districts/文登区", token), 403, "R2.1")
    assert "文登区" in body["detail"] and "环翠区" in body["detail"]


async def test_r2_1_procuratorate_is_scoped_to_its_district(app: FastAPI) -> None:
    token = mint(
        PRIVATE_PEM, subject="p", roles=[Role.PROCURATORATE], district="环翠区",
        office="威海市人民检察院",
    )
    assert (await get(app, "/districts/环翠区", token)).status_code == 200
    assert_problem(await get(app, "/districts/荣成市", token), 403, "R2.1")


@pytest.mark.parametrize("role", [Role.BUREAU_ADMIN, Role.AUDITOR])
async def test_citywide_roles_read_any_district(app: FastAPI, role: Role) -> None:
    token = mint(PRIVATE_PEM, subject="c", roles=[role])
    for district in ("环翠区", "文登区", "荣成市", "乳山市"):
        assert (await get(app, f"/districts/{district}", token)).status_code == 200


async def test_supervisor_sees_only_own_record(app: FastAPI) -> None:
    token = mint(PRIVATE_PEM, subject="s", roles=[Role.SUPERVISOR], supervisor_id="sup-1")
    assert (await get(app, "/supervisors/sup-1", token)).status_code == 200
    assert_problem(await get(app, "/supervisors/sup-2", token), 403, "forbidden")
    assert_problem(await get(app, "/districts/环翠区", token), 403, "forbidden")
    admin = mint(PRIVATE_PEM, subject="a", roles=[Role.BUREAU_ADMIN])
    assert (await get(app, "/supervisors/sup-2", admin)).status_code == 200
    district = mint(PRIVATE_PEM, subject="d", roles=[Role.DISTRICT_BUREAU], district="环翠区")
    assert_problem(await get(app, "/supervisors/sup-1", district), 403, "forbidden")


def test_principal_helpers() -> None:
    def p(*roles: Role, **kw: Any) -> Principal:
        return Principal(subject="x", name="x", roles=frozenset(roles), **kw)

    for role in (Role.BUREAU_ADMIN, Role.AUDITOR, Role.FINANCE, Role.SERVICE):
        assert p(role).is_citywide and p(role).can_see_district("文登区")
    scoped = p(Role.DISTRICT_BUREAU, district="环翠区")
    assert not scoped.is_citywide
    assert scoped.can_see_district("环翠区") and not scoped.can_see_district("文登区")
    assert not scoped.can_see_district(None)
    assert not p(Role.DISTRICT_BUREAU).can_see_district(None)  # no district: sees nothing
    assert not p(Role.SUPERVISOR, supervisor_id="s").can_see_district("环翠区")
    assert p(Role.SUPERVISOR, supervisor_id="s").is_self("s")
    assert not p(Role.SUPERVISOR, supervisor_id="s").is_self("t")
    assert not p(Role.BUREAU_ADMIN, supervisor_id="s").is_self("s")  # not a supervisor
    assert not p(Role.SUPERVISOR).is_self(None)
    assert scoped.has(Role.BUREAU_ADMIN, Role.DISTRICT_BUREAU) and not scoped.has(Role.FINANCE)


def test_ensure_helpers_raise_problem_errors() -> None:
    scoped = Principal("x", "x", frozenset({Role.DISTRICT_BUREAU}), district="环翠区")
    with pytest.raises(ProblemError) as caught:
        ensure_district(scoped, "文登区")
    assert (caught.value.status, caught.value.code) == (403, "R2.1")
    ensure_district(scoped, "环翠区")
    with pytest.raises(ProblemError) as caught:
        ensure_self_or(scoped, "sup-1", Role.BUREAU_ADMIN)
    assert caught.value.code == "forbidden"
    ensure_self_or(scoped, "sup-1", Role.DISTRICT_BUREAU)


def test_require_needs_a_known_role() -> None:
    with pytest.raises(ValueError):
        require()
    with pytest.raises(ValueError):
        require("root")  # type: ignore[arg-type]


# --- dev tokens ----------------------------------------------------------------------------------


def test_mint_refuses_what_the_verifier_would_refuse() -> None:
    with pytest.raises(ValueError):
        mint(PRIVATE_PEM, subject="x", roles=["root"])
    with pytest.raises(ValueError):
        mint(PRIVATE_PEM, subject="x", roles=[Role.DISTRICT_BUREAU])
    with pytest.raises(ValueError):
        mint(PRIVATE_PEM, subject="x", roles=[Role.SUPERVISOR])


async def test_dev_personas_cover_every_human_role_and_verify(verifier: TokenVerifier) -> None:
    roles = {role for persona in DEV_PERSONAS for role in persona.roles}
    assert roles == set(Role) - {Role.SERVICE}
    for persona in DEV_PERSONAS:
        principal = await verifier.verify(mint_persona(PRIVATE_PEM, persona))
        assert principal.subject == persona.subject
        assert principal.name == persona.name
        assert principal.roles == frozenset(persona.roles)
        assert principal.district == persona.district
        assert principal.supervisor_id == persona.supervisor_id
    by_role: dict = {}
    for persona in DEV_PERSONAS:  # the first persona of each role (a second one stands for four eyes)
        by_role.setdefault(persona.roles[0], persona)
    assert by_role[Role.BUREAU_ADMIN].name == "市司法局管理员"
    assert by_role[Role.DISTRICT_BUREAU].district == "环翠区"
    assert by_role[Role.PROCURATORATE].office == "威海市人民检察院"
    assert by_role[Role.PROCURATORATE].district == "环翠区"
    assert by_role[Role.SUPERVISOR].supervisor_id == "demo-supervisor"


def test_init_key_file_keeps_existing_keys(tmp_path: Path) -> None:
    path = init_key_file(tmp_path / "nested" / "dev-keys.json")
    first = load_key_file(path)
    assert init_key_file(path) == path
    assert load_key_file(path) == first


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.tokens", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


async def test_cli_init_then_mint(tmp_path: Path) -> None:
    key_file = tmp_path / ".data" / "dev-keys.json"
    init = run_cli("--key-file", str(key_file), "--init")
    assert init.returncode == 0, init.stderr
    assert init.stdout.strip() == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    _, public_pem = load_key_file(key_file)

    minted = run_cli(
        "--key-file", str(key_file), "--role", "district_bureau", "--district", "环翠区",
        "--subject", "u-42", "--ttl", "120",
    )
    assert minted.returncode == 0, minted.stderr
    principal = await TokenVerifier(key=public_pem).verify(minted.stdout.strip())
    assert principal.subject == "u-42"
    assert principal.roles == frozenset({Role.DISTRICT_BUREAU})
    assert principal.district == "环翠区"
    exp = jwt.decode(minted.stdout.strip(), options={"verify_signature": False})["exp"]
    assert exp - time.time() <= 120

    refused = run_cli("--key-file", str(key_file), "--role", "district_bureau")
    assert refused.returncode != 0 and "district" in refused.stderr


async def test_a_verified_token_is_remembered_briefly_and_never_past_its_expiry(monkeypatch):
    from shared.auth import VerifiedTokenCache

    private_pem, public_pem = generate_dev_keypair()
    verifier = TokenVerifier(key=public_pem)
    token = mint(private_pem, subject="u1", roles=["bureau_admin"], ttl_seconds=3600)
    first = await verifier.verify(token)
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or {})
    assert await verifier.verify(token) == first  # from the cache: no second signature check
    assert calls == []

    cache = VerifiedTokenCache(ttl=30)
    cache.put("t", first, expires_at=time.time() - 1)  # already expired: never stored
    assert cache.get("t") is None
    cache.put("t", first, expires_at=time.time() + 0.05)
    assert cache.get("t") == first
    await asyncio.sleep(0.06)
    assert cache.get("t") is None


def test_the_verified_token_cache_is_bounded():
    from shared.auth import VerifiedTokenCache

    principal = Principal(subject="u", name="u", roles=frozenset({Role.AUDITOR}))
    cache = VerifiedTokenCache(max_entries=2)
    for token in ("a", "b", "c"):
        cache.put(token, principal, expires_at=time.time() + 600)
    assert cache.get("a") is None and cache.get("c") == principal

"""Development tokens: an Ed25519 key pair in a JSON key file and EdDSA JWTs minted with it.

For local runs and tests only; production tokens come from the real identity provider.

    python -m shared.tokens --key-file .data/dev-keys.json --init
    python -m shared.tokens --key-file .data/dev-keys.json --role district_bureau --district 环翠区
"""

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER, Role, principal_from_claims, roles_of

DEFAULT_TTL_SECONDS = 8 * 3600


def generate_dev_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PEM, public PEM)."""
    private_key = ed25519.Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


def public_jwk(public_key_pem: str) -> dict[str, str]:
    """The Ed25519 public key as a JWK (with an RFC 7638 thumbprint `kid`), for a dev JWKS."""
    public_key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise ValueError("dev keys are Ed25519")
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    # RFC 7638: SHA-256 over the required members, sorted, no whitespace.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid.decode(), "alg": "EdDSA", "use": "sig"}


def mint(
    private_key_pem: str,
    *,
    subject: str,
    roles: Iterable[Role | str],
    name: str | None = None,
    district: str | None = None,
    office: str | None = None,
    supervisor_id: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """An EdDSA-signed token; ValueError for claims the verifier would refuse."""
    private_key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(private_key, ed25519.Ed25519PrivateKey):
        raise ValueError("dev tokens are signed with an Ed25519 key")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "name": name or subject,
        "roles": sorted(roles_of(str(r) for r in roles)),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    for claim, value in (("district", district), ("office", office), ("supervisor_id", supervisor_id)):
        if value is not None:
            claims[claim] = value
    # Same checks as the verifier, so a bad token fails here rather than on first use.
    principal_from_claims(claims)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    # `kid` lets the token be checked against a JWKS as well as a static key.
    headers = {"kid": public_jwk(public_pem)["kid"]}
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers=headers)


@dataclass(frozen=True)
class Persona:
    """A ready-made demo user; its fields are `mint` keyword arguments."""

    subject: str
    name: str
    roles: tuple[Role, ...]
    district: str | None = None
    office: str | None = None
    supervisor_id: str | None = None


DEV_PERSONAS: list[Persona] = [
    Persona("dev-bureau-admin", "市司法局管理员", (Role.BUREAU_ADMIN,)),
    # four eyes (R30.1): a second bureau user approves the justification of more than 15 % excellent
    Persona("dev-bureau-reviewer", "市司法局复核人员", (Role.BUREAU_ADMIN,)),
    Persona("dev-district-huancui", "环翠区司法局", (Role.DISTRICT_BUREAU,), district="环翠区"),
    Persona(
        "dev-procuratorate-weihai", "威海市人民检察院", (Role.PROCURATORATE,),
        district="环翠区", office="威海市人民检察院",
    ),
    Persona(
        "dev-supervisor", "人民监督员（演示）", (Role.SUPERVISOR,), supervisor_id="demo-supervisor"
    ),
    Persona("dev-finance", "市司法局财务", (Role.FINANCE,)),
    # four eyes (R42.1): the second finance user approves what the first checked
    Persona("dev-finance-reviewer", "市司法局财务复核", (Role.FINANCE,)),
    Persona("dev-auditor", "审计人员", (Role.AUDITOR,)),
]


def mint_persona(private_key_pem: str, persona: Persona, **overrides: Any) -> str:
    """Mint a token for `persona` (`overrides` go to `mint`, e.g. ttl_seconds)."""
    return mint(
        private_key_pem,
        subject=persona.subject,
        roles=persona.roles,
        name=persona.name,
        district=persona.district,
        office=persona.office,
        supervisor_id=persona.supervisor_id,
        **overrides,
    )


def pick_supervisor(registry_url: str, private_key_pem: str) -> tuple[str, str] | None:
    """(id, name) of a supervisor on the roster who may take part in a draw, asked of the running
    registry with a bureau token; None when the registry cannot be reached or has nobody eligible.
    The demo persona's `supervisor_id` names no real person until this gives one."""
    import httpx

    bureau = mint_persona(private_key_pem, DEV_PERSONAS[0], ttl_seconds=60)
    try:
        answer = httpx.get(f"{registry_url.rstrip('/')}/supervisors/eligible", params={"limit": 1},
                           headers={"Authorization": f"Bearer {bureau}"}, timeout=5)
        answer.raise_for_status()
        items = answer.json()["items"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return (str(items[0]["id"]), str(items[0]["name"])) if items else None


def with_real_supervisor(personas: list[Persona], picked: tuple[str, str] | None) -> list[Persona]:
    """The personas with the demo supervisor standing for `picked` (id, name) when there is one."""
    if picked is None:
        return personas
    supervisor_id, name = picked
    return [dataclasses.replace(p, supervisor_id=supervisor_id, name=f"人民监督员 {name}")
            if Role.SUPERVISOR in p.roles else p for p in personas]


def init_key_file(path: str | os.PathLike[str]) -> Path:
    """Create the JSON key file (mode 0600) unless it exists; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never overwrite a key pair that issued live tokens, even if two launchers race.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    private_pem, public_pem = generate_dev_keypair()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"private_key": private_pem, "public_key": public_pem}, f, indent=2)
        f.write("\n")
    return path


def load_key_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(private PEM, public PEM) from a key file written by `init_key_file`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data["private_key"], data["public_key"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.tokens", description="Mint development JWTs (EdDSA)."
    )
    parser.add_argument("--key-file", required=True, type=Path, help="JSON key file")
    parser.add_argument("--init", action="store_true", help="create the key file if missing")
    parser.add_argument(
        "--role", action="append", choices=[r.value for r in Role], help="repeatable"
    )
    parser.add_argument("--subject", help="sub claim (default: dev-<role>)")
    parser.add_argument("--name", help="display name (default: the subject)")
    parser.add_argument("--district")
    parser.add_argument("--office")
    parser.add_argument("--supervisor-id")
    parser.add_argument("--pick-supervisor", metavar="REGISTRY_URL",
                        help="role supervisor without --supervisor-id: name an eligible supervisor of this registry")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds")
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: `--init` prints the key file path, otherwise prints one token."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.init:
        print(init_key_file(args.key_file))
        return 0
    if not args.role:
        parser.error("--role is required (or --init)")
    if not args.key_file.exists():
        parser.error(f"{args.key_file} does not exist; create it with --init")
    private_pem, _ = load_key_file(args.key_file)
    name = args.name
    if Role.SUPERVISOR.value in args.role and not args.supervisor_id and args.pick_supervisor:
        picked = pick_supervisor(args.pick_supervisor, private_pem)
        if picked is None:
            parser.error(f"no eligible supervisor found at {args.pick_supervisor} (is make run up?); "
                         "give SUPERVISOR_ID=<id> instead")
        args.supervisor_id, name = picked[0], name or picked[1]
    try:
        token = mint(
            private_pem,
            subject=args.subject or f"dev-{args.role[0]}",
            roles=args.role,
            name=name,
            district=args.district,
            office=args.office,
            supervisor_id=args.supervisor_id,
            ttl_seconds=args.ttl,
            issuer=args.issuer,
            audience=args.audience,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The verifiable balanced draw of DRAW.md (R11.1, R11.2, R14.1): pure code, standard library only.

This module is shared by the service and by the stand-alone verifier
(`python -m services.selection.draw.verify receipt.json`); it must never import anything outside
the standard library, so anyone can recompute a draw from its receipt alone.

Encodings (all of them are part of the receipt's meaning, change them only with a new ALG):
- canonical(x) = json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False) as UTF-8.
- H(x) = SHA-256 hex of canonical(x) (of the bytes themselves when x is bytes).
- snapshot = {"prev_receipt_hash": hex, "rows": [{"id", "district", "specialties" (sorted),
  "served"}, ...] sorted by id}; ids are the supervisors' UUIDs (pseudonymous: no names, phones).
- commitment = SHA-256 hex of the 32 raw bytes of the bureau nonce (the nonce is 64 hex chars).
- seed = H([ALG, H(snapshot), H(params), bureau_nonce, procuratorate_nonce, public_value, round])
  i.e. SHA-256 of the canonical JSON *list* of those seven values (nonces as given, hex strings or
  null; round an integer). The HMAC key is the 32 raw bytes of the seed.
- mac(g, id) = HMAC-SHA256(seed bytes, UTF-8 of g + "|" + id).
- groups: "local" = rows whose district equals params["district"]; "cross" = every other row;
  rows not holding params["specialty"] (when set) belong to no group (R11.2).
- strict key   = (served - cmin, mac hex, id)                                  (default)
  weighted key = (-ln(u) * B ** (served - cmin), id), u = (int(mac[:8], big-endian) + 1) / 2**64,
  so u is in (0, 1] and never 0; B = params["weight_base"] > 1; B ** k is computed by repeated
  IEEE multiplication (exact for integer B such as 4). -ln(u) uses math.log: IEEE doubles and a
  faithful libm give the same bits on every common platform; a 1-ulp libm difference could only
  swap two keys within 1 ulp of each other (probability ~2**-50 per pair).
- order[g] = ids sorted by key: the full draw order; the first seats[g] are contacted first and
  the rest are the alternates, in order (R12.1, R14.2).
- receipt_hash = H(receipt without "receipt_hash", "contact_log" and "snapshot"): the snapshot is
  bound through "snapshot_hash" (and the seed), so it is hashed once. The contact log is a chain
  starting from receipt_hash: entry_hash = H(entry with "prev_hash"), the first prev_hash is the receipt_hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ALG = "people-supervisor-draw/1"
GROUPS = ("local", "cross")
GENESIS_HASH = "0" * 64
SEED_FORMULA = (
    "seed = sha256(canonical_json([alg, sha256(canonical_json(snapshot)), "
    "sha256(canonical_json(params)), bureau_nonce, procuratorate_nonce, public_value, round])); "
    "canonical_json = json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False) "
    "as UTF-8; strict key = (served - cmin, hmac_sha256(seed_bytes, group + '|' + id).hex(), id); "
    "weighted key = (-ln(u) * B ** (served - cmin), id), u = (first 8 bytes of the hmac as "
    "big-endian int + 1) / 2**64"
)
STRICT = "strict"
WEIGHTED = "weighted"


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes of obj (sorted keys, no spaces, UTF-8)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def H(obj: Any) -> str:
    """SHA-256 hex of canonical(obj), or of the bytes themselves."""
    return sha256_hex(obj if isinstance(obj, bytes) else canonical(obj))


def commitment(bureau_nonce: str) -> str:
    """SHA-256 hex of the raw bytes of a hex nonce (what the bureau publishes before the draw)."""
    return sha256_hex(bytes.fromhex(bureau_nonce))


def snapshot_row(supervisor_id: str, district: str, specialties: Iterable[str], served: int) -> dict:
    """One pseudonymous snapshot row (keys in sorted order: plain json.dumps is then canonical)."""
    return {"district": district, "id": str(supervisor_id), "served": int(served),
            "specialties": sorted(specialties)}


def make_snapshot(rows: Iterable[Mapping[str, Any]], prev_receipt_hash: str) -> dict:
    """The snapshot: rows normalized and sorted by id, bound to the previous receipt."""
    norm = [snapshot_row(r["id"], r["district"], r["specialties"], r["served"]) for r in rows]
    norm.sort(key=lambda r: r["id"])
    return {"prev_receipt_hash": prev_receipt_hash, "rows": norm}


def compute_seed(*, snapshot_hash: str, params_hash: str, bureau_nonce: str | None,
                 procuratorate_nonce: str | None, public_value: str | None, round_no: int) -> str:
    """The seed of SEED_FORMULA (hex)."""
    return H([ALG, snapshot_hash, params_hash, bureau_nonce, procuratorate_nonce, public_value, round_no])


def group_of(row: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """'local', 'cross' or None (filtered out by the specialty, R11.2)."""
    specialty = params.get("specialty")
    if specialty and specialty not in row["specialties"]:
        return None
    return "local" if row["district"] == params["district"] else "cross"


def _power(base: float, k: int) -> float:
    result = 1.0
    for _ in range(k):
        result *= base
    return result


def order_group(rows: Sequence[Mapping[str, Any]], group: str, seed_hex: str, *,
                mode: str = STRICT, weight_base: float = 4.0) -> list[str]:
    """The full draw order of one group's rows (R11.1 balanced opportunity)."""
    if not rows:
        return []
    key_bytes = bytes.fromhex(seed_hex)
    cmin = min(r["served"] for r in rows)
    prefix = (group + "|").encode("utf-8")  # UTF-8 of group + "|" + id, concatenated as bytes
    digest = hmac.digest
    if mode == STRICT:
        keyed = [(r["served"] - cmin, digest(key_bytes, prefix + r["id"].encode("utf-8"), "sha256"), r["id"])
                 for r in rows]
        keyed.sort()
        return [k[2] for k in keyed]
    if mode == WEIGHTED:
        if not weight_base > 1:
            raise ValueError("weight_base must be > 1")
        powers: dict[int, float] = {}
        keyed_w = []
        for r in rows:
            mac = digest(key_bytes, prefix + r["id"].encode("utf-8"), "sha256")
            u = (int.from_bytes(mac[:8], "big") + 1) / 18446744073709551616  # 2**64
            k = r["served"] - cmin
            if k not in powers:
                powers[k] = _power(weight_base, k)
            keyed_w.append((-math.log(u) * powers[k], r["id"]))
        keyed_w.sort()
        return [k[1] for k in keyed_w]
    raise ValueError(f"unknown balance mode {mode!r}")


def compute_order(snapshot: Mapping[str, Any], params: Mapping[str, Any], seed_hex: str) -> dict[str, list[str]]:
    """order per group (both groups are always ordered, whatever the seats)."""
    members: dict[str, list[Mapping[str, Any]]] = {g: [] for g in GROUPS}
    for row in snapshot["rows"]:
        g = group_of(row, params)
        if g is not None:
            members[g].append(row)
    mode = params.get("balance_mode", STRICT)
    base = float(params.get("weight_base", 4.0))
    return {g: order_group(members[g], g, seed_hex, mode=mode, weight_base=base) for g in GROUPS}


def build_receipt(*, draw_id: str, request_id: str, round_no: int, snapshot: dict, params: dict,
                  bureau_nonce: str, procuratorate_nonce: str | None, public_value: str | None,
                  prev_receipt_hash: str, drawn_at: str, snapshot_bytes: bytes | None = None) -> dict:
    """Run the draw and return its receipt (with receipt_hash).

    `snapshot_bytes`, if given, must be canonical(snapshot) (lets a caller encode it only once).
    """
    if snapshot.get("prev_receipt_hash") != prev_receipt_hash:
        raise ValueError("snapshot must be bound to the previous receipt")
    snapshot_hash = sha256_hex(snapshot_bytes if snapshot_bytes is not None else canonical(snapshot))
    params_hash = H(params)
    seed = compute_seed(snapshot_hash=snapshot_hash, params_hash=params_hash, bureau_nonce=bureau_nonce,
                        procuratorate_nonce=procuratorate_nonce, public_value=public_value,
                        round_no=round_no)
    receipt = {
        "alg": ALG,
        "seed_formula": SEED_FORMULA,
        "draw_id": draw_id,
        "request_id": request_id,
        "round": round_no,
        "drawn_at": drawn_at,
        "snapshot": snapshot,
        "snapshot_hash": snapshot_hash,
        "params": params,
        "params_hash": params_hash,
        "commitments": {"bureau": commitment(bureau_nonce)},
        "nonces": {"bureau": bureau_nonce, "procuratorate": procuratorate_nonce},
        "public_value": public_value,
        "seed": seed,
        "order": compute_order(snapshot, params, seed),
        "prev_receipt_hash": prev_receipt_hash,
    }
    receipt["receipt_hash"] = receipt_hash(receipt)
    return receipt


RECEIPT_HASH_EXCLUDES = ("receipt_hash", "contact_log", "snapshot")


def receipt_hash(receipt: Mapping[str, Any]) -> str:
    """H(receipt without receipt_hash, the contact log and the snapshot (bound by snapshot_hash))."""
    return H({k: v for k, v in receipt.items() if k not in RECEIPT_HASH_EXCLUDES})


def contact_entry_hash(entry: Mapping[str, Any]) -> str:
    """H(entry without its own hash); the entry carries prev_hash."""
    return H({k: v for k, v in entry.items() if k != "hash"})


def verify_contact_log(log: Sequence[Mapping[str, Any]], start_hash: str) -> tuple[bool, str]:
    """Check the hash chain of a contact log; (ok, message naming the first bad entry)."""
    prev = start_hash
    for i, entry in enumerate(log):
        if entry.get("prev_hash") != prev:
            return False, f"entry {i + 1}: prev_hash does not link"
        if contact_entry_hash(entry) != entry.get("hash"):
            return False, f"entry {i + 1}: hash does not match its content"
        prev = entry["hash"]
    return True, f"{len(log)} entries"


def verify_receipt(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute everything a receipt file alone can prove; {ok, checks: {name: {ok, detail}}}."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = {"ok": bool(ok), "detail": detail}

    try:
        check("alg", receipt.get("alg") == ALG, str(receipt.get("alg")))
        snapshot, params = receipt["snapshot"], receipt["params"]
        check("snapshot_hash", H(snapshot) == receipt["snapshot_hash"])
        check("snapshot_bound_to_prev", snapshot.get("prev_receipt_hash") == receipt["prev_receipt_hash"])
        ids = [r["id"] for r in snapshot["rows"]]
        check("snapshot_sorted_unique", ids == sorted(set(ids)))
        check("params_hash", H(params) == receipt["params_hash"])
        nonce = receipt["nonces"]["bureau"]
        check("bureau_commitment", commitment(nonce) == receipt["commitments"]["bureau"])
        seed = compute_seed(snapshot_hash=H(snapshot), params_hash=H(params), bureau_nonce=nonce,
                            procuratorate_nonce=receipt["nonces"].get("procuratorate"),
                            public_value=receipt.get("public_value"), round_no=receipt["round"])
        check("seed", seed == receipt["seed"])
        check("order", compute_order(snapshot, params, seed) == receipt["order"])
        check("receipt_hash", receipt_hash(receipt) == receipt["receipt_hash"])
        ok, detail = verify_contact_log(receipt.get("contact_log", []), receipt["receipt_hash"])
        check("contact_log_chain", ok, detail)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check("well_formed", False, f"{type(exc).__name__}: {exc}")
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}

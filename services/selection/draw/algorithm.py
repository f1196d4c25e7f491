"""The verifiable balanced draw of DRAW.md (R11.1, R11.2, R14.1): pure code, standard library only.

This module is shared by the service and by the stand-alone verifier
(`python -m services.selection.draw.verify receipt.json`); it must never import anything outside
the standard library, so anyone can recompute a draw from its receipt alone.

Version 2 keeps every property of DRAW.md's algorithm (and its keys, HMAC-SHA256 per person) and
changes how the pool is written down, so that a draw over 20 000 people costs what changed since
the previous draw rather than a fresh 2 MB document:
- the *pool* of a year (everyone drawable: active, trained, not dismissed, with `served` in that
  year) is cut into buckets by the first two hex characters of the id; each bucket is canonical
  JSON stored once under its own SHA-256 (content-addressed, like the objects of git);
- the *snapshot* is the small manifest {prev_receipt_hash, year, buckets: {prefix: bucket hash}};
- what only concerns this request is written in the params, before the seed exists: the specialty
  filter (R11.2), the yearly cap, and `excluded` = {id: [reasons]} (recused or in conflict for this
  request, booked at an overlapping time, already tried in an earlier round);
- `order` holds the first need + alternates of each group (DRAW.md "alternates per group"): the
  people to contact and the replacements in order; when they run out, round + 1 (R14.1).

Encodings (all of them are part of the receipt's meaning, change them only with a new ALG):
- canonical(x) = json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False) as UTF-8.
- H(x) = SHA-256 hex of canonical(x) (of the bytes themselves when x is bytes).
- row = {"district", "id", "served", "specialties" (sorted)}; ids are the supervisors' UUIDs in
  lowercase text (pseudonymous: no names, phones).
- bucket = the list of rows whose id starts with its two-character prefix, sorted by id;
  snapshot = {"prev_receipt_hash": hex, "year": int, "buckets": {prefix: H(bucket)}}, empty
  buckets left out. The receipt file carries the buckets themselves under "buckets" {hash: rows}.
- commitment = SHA-256 hex of the 32 raw bytes of the bureau nonce (the nonce is 64 hex chars).
- seed = H([ALG, H(snapshot), H(params), bureau_nonce, procuratorate_nonce, public_value, round])
  i.e. SHA-256 of the canonical JSON *list* of those seven values (nonces as given, hex strings or
  null; round an integer). The HMAC key is the 32 raw bytes of the seed.
- members = rows of every bucket, minus ids in params["excluded"], minus served >= params
  ["yearly_cap"] (when set), minus rows without params["specialty"] (when set, R11.2);
  "local" = members whose district equals params["district"]; "cross" = the other members.
- mac(g, id) = HMAC-SHA256(seed bytes, UTF-8 of g + "|" + id).
- strict key   = (served - cmin, mac, id)                                  (default)
  weighted key = (-ln(u) * B ** (served - cmin), id), u = (int(mac[:8], big-endian) + 1) / 2**64,
  so u is in (0, 1] and never 0; B = params["weight_base"] > 1; B ** k is computed by repeated
  IEEE multiplication (exact for integer B such as 4). -ln(u) uses math.log: IEEE doubles and a
  faithful libm give the same bits on every common platform; a 1-ulp libm difference could only
  swap two keys within 1 ulp of each other (probability ~2**-50 per pair).
  cmin = the least `served` among the group's members.
- order[g] = the first need[g] + alternates ids of the group's members sorted by key, where
  need = params["need"] (seats this round must fill) and alternates = params["alternates"]; a
  group with need 0 has an empty order. Without "alternates" in params the whole group is ordered.
- receipt_hash = H(receipt without "receipt_hash", "contact_log" and "buckets"): the buckets are
  bound through the snapshot's hashes. The contact log is a chain starting from receipt_hash:
  entry_hash = H(entry with "prev_hash"), the first prev_hash is the receipt_hash.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ALG = "people-supervisor-draw/2"
GROUPS = ("local", "cross")
GENESIS_HASH = "0" * 64
PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")
SEED_FORMULA = (
    "seed = sha256(canonical_json([alg, sha256(canonical_json(snapshot)), "
    "sha256(canonical_json(params)), bureau_nonce, procuratorate_nonce, public_value, round])); "
    "canonical_json = json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False) "
    "as UTF-8; snapshot.buckets[prefix] = sha256(canonical_json(rows whose id starts with prefix, "
    "sorted by id)); strict key = (served - cmin, hmac_sha256(seed_bytes, group + '|' + id), id); "
    "weighted key = (-ln(u) * B ** (served - cmin), id), u = (first 8 bytes of the hmac as "
    "big-endian int + 1) / 2**64; order = first need + alternates by key"
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
    """One pseudonymous pool row (keys in sorted order: plain json.dumps is then canonical)."""
    return {"district": district, "id": str(supervisor_id), "served": int(served),
            "specialties": sorted(specialties)}


def bucket_prefix(supervisor_id: str) -> str:
    return supervisor_id[:2]


def make_pool(rows: Iterable[Mapping[str, Any]], *, prev_receipt_hash: str,
              year: int) -> tuple[dict, dict[str, list[dict]]]:
    """(snapshot, buckets by hash) for rows: what the service keeps in PostgreSQL, in pure form."""
    by_prefix: dict[str, list[dict]] = {}
    for r in rows:
        row = snapshot_row(r["id"], r["district"], r["specialties"], r["served"])
        by_prefix.setdefault(bucket_prefix(row["id"]), []).append(row)
    buckets: dict[str, list[dict]] = {}
    manifest: dict[str, str] = {}
    for prefix, members in by_prefix.items():
        members.sort(key=lambda r: r["id"])
        digest = H(members)
        manifest[prefix] = digest
        buckets[digest] = members
    return {"prev_receipt_hash": prev_receipt_hash, "year": year, "buckets": manifest}, buckets


def compute_seed(*, snapshot_hash: str, params_hash: str, bureau_nonce: str | None,
                 procuratorate_nonce: str | None, public_value: str | None, round_no: int) -> str:
    """The seed of SEED_FORMULA (hex)."""
    return H([ALG, snapshot_hash, params_hash, bureau_nonce, procuratorate_nonce, public_value, round_no])


def hmac_pads(key: bytes) -> tuple[Any, Any]:
    """The inner and outer SHA-256 states of HMAC (RFC 2104) with `key`, hashed once for many messages.

    HMAC(key, m) = outer.copy().update(inner.copy().update(m).digest()).digest(): the same bytes as
    hmac.digest(key, m, "sha256") (a unit test holds them equal) at a third of its cost per message,
    which matters for 20 000 keys per draw.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def hmac_sha256(key: bytes):
    """message -> HMAC-SHA256(key, message), with the pads of `key` hashed once."""
    inner, outer = hmac_pads(key)

    def mac(message: bytes) -> bytes:
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    return mac


def _keyed(rows: Sequence[Mapping[str, Any]], prefix: bytes, pads: tuple[Any, Any]) -> list[bytes]:
    """[HMAC(seed, prefix + id) + UTF-8 of id] for rows: `hmac_sha256` written out (the hot loop).

    One bytes object per row, not a (mac, id) tuple: bytes compare exactly as those tuples do (the
    mac has a fixed 32 bytes; UTF-8 keeps code point order), and they are not tracked by the
    garbage collector, so keying 20 000 people triggers no collections. The group prefix is hashed
    into the inner state once.
    """
    inner = pads[0].copy()
    inner.update(prefix)
    inner_copy, outer_copy = inner.copy, pads[1].copy
    out = []
    append = out.append
    for r in rows:
        rid = r["id"].encode("utf-8")
        i = inner_copy()
        i.update(rid)
        o = outer_copy()
        o.update(i.digest())
        append(o.digest() + rid)
    return out


def members_by_group(snapshot: Mapping[str, Any], buckets: Mapping[str, Sequence[Mapping[str, Any]]],
                     params: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """The rows each group draws from (R11.1 local/cross, R11.2 specialty, exclusions, yearly cap)."""
    excluded = params.get("excluded") or {}
    cap = params.get("yearly_cap")
    specialty = params.get("specialty")
    district = params["district"]
    members: dict[str, list[Mapping[str, Any]]] = {g: [] for g in GROUPS}
    local, cross = members["local"], members["cross"]
    for prefix in sorted(snapshot["buckets"]):
        for row in buckets[snapshot["buckets"][prefix]]:
            if row["id"] in excluded or (cap is not None and row["served"] >= cap):
                continue
            if specialty and specialty not in row["specialties"]:
                continue
            (local if row["district"] == district else cross).append(row)
    return members


def _power(base: float, k: int) -> float:
    result = 1.0
    for _ in range(k):
        result *= base
    return result


def order_group(rows: Sequence[Mapping[str, Any]], group: str, seed_hex: str, *,
                mode: str = STRICT, weight_base: float = 4.0, limit: int | None = None) -> list[str]:
    """The first `limit` (None: all) of one group's rows in draw order (R11.1 balanced opportunity).

    Always equal to the full sort by key cut at `limit`; strict mode gets there by keying only the
    least-served tiers it needs (the key's first part is the tier), weighted mode keys everyone.
    """
    if not rows or limit == 0:
        return []
    pads = hmac_pads(bytes.fromhex(seed_hex))
    served = [r["served"] for r in rows]
    cmin = min(served)
    prefix = (group + "|").encode("utf-8")  # UTF-8 of group + "|" + id, concatenated as bytes
    if mode == STRICT:
        tiers: dict[int, list[Mapping[str, Any]]] = {}
        if max(served) == cmin:  # everyone level (e.g. in January): one tier, no sorting into tiers
            tiers[0] = list(rows)
        else:
            for r, n in zip(rows, served, strict=True):
                tiers.setdefault(n - cmin, []).append(r)
        out: list[str] = []
        for tier in sorted(tiers):
            keyed = _keyed(tiers[tier], prefix, pads)
            room = None if limit is None else limit - len(out)
            chosen = sorted(keyed) if room is None or room >= len(keyed) else heapq.nsmallest(room, keyed)
            out.extend(k[32:].decode("utf-8") for k in chosen)
            if limit is not None and len(out) >= limit:
                break
        return out
    if mode == WEIGHTED:
        if not weight_base > 1:
            raise ValueError("weight_base must be > 1")
        powers: dict[int, float] = {}
        keyed_w = []
        for keyed, r in zip(_keyed(rows, prefix, pads), rows, strict=True):
            u = (int.from_bytes(keyed[:8], "big") + 1) / 18446744073709551616  # 2**64
            k = r["served"] - cmin
            if k not in powers:
                powers[k] = _power(weight_base, k)
            keyed_w.append((-math.log(u) * powers[k], r["id"]))
        chosen_w = sorted(keyed_w) if limit is None else heapq.nsmallest(limit, keyed_w)
        return [k[1] for k in chosen_w]
    raise ValueError(f"unknown balance mode {mode!r}")


def group_limit(params: Mapping[str, Any], group: str) -> int | None:
    """need[group] + alternates; None (the whole group) when params name no alternates."""
    if "alternates" not in params:
        return None
    need = params.get("need") or params.get("seats") or {}
    n = int(need.get(group, 0))
    return 0 if n <= 0 else n + int(params["alternates"])


def compute_order(snapshot: Mapping[str, Any], buckets: Mapping[str, Sequence[Mapping[str, Any]]],
                  params: Mapping[str, Any], seed_hex: str) -> dict[str, list[str]]:
    """order per group: the people to contact first, then the alternates, in order."""
    members = members_by_group(snapshot, buckets, params)
    mode = params.get("balance_mode", STRICT)
    base = float(params.get("weight_base", 4.0))
    return {g: order_group(members[g], g, seed_hex, mode=mode, weight_base=base,
                           limit=group_limit(params, g)) for g in GROUPS}


def build_receipt(*, draw_id: str, request_id: str, round_no: int, snapshot: dict,
                  buckets: Mapping[str, Sequence[Mapping[str, Any]]], params: dict, bureau_nonce: str,
                  procuratorate_nonce: str | None, public_value: str | None, prev_receipt_hash: str,
                  drawn_at: str) -> dict:
    """Run the draw and return its receipt (with receipt_hash, without the buckets themselves)."""
    if snapshot.get("prev_receipt_hash") != prev_receipt_hash:
        raise ValueError("snapshot must be bound to the previous receipt")
    snapshot_hash = H(snapshot)
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
        "order": compute_order(snapshot, buckets, params, seed),
        "prev_receipt_hash": prev_receipt_hash,
    }
    receipt["receipt_hash"] = receipt_hash(receipt)
    return receipt


RECEIPT_HASH_EXCLUDES = ("receipt_hash", "contact_log", "buckets")


def receipt_hash(receipt: Mapping[str, Any]) -> str:
    """H(receipt without receipt_hash, the contact log and the buckets (bound by the snapshot))."""
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


def check_buckets(snapshot: Mapping[str, Any], buckets: Mapping[str, Any]) -> tuple[bool, str]:
    """Every bucket of the snapshot is present, hashes to its name, and holds only its prefix, in order."""
    for prefix, digest in sorted(snapshot["buckets"].items()):
        rows = buckets.get(digest)
        if rows is None:
            return False, f"bucket {prefix}: missing"
        if not PREFIX_RE.match(prefix):
            return False, f"bucket {prefix}: not a two-hex-digit prefix"
        if H(rows) != digest:
            return False, f"bucket {prefix}: content does not match its hash"
        ids = [r["id"] for r in rows]
        if not rows or ids != sorted(set(ids)) or any(bucket_prefix(i) != prefix for i in ids):
            return False, f"bucket {prefix}: ids empty, unsorted, repeated or of another prefix"
    return True, f"{len(snapshot['buckets'])} buckets"


def verify_receipt(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute everything a receipt file alone can prove; {ok, checks: {name: {ok, detail}}}."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = {"ok": bool(ok), "detail": detail}

    try:
        check("alg", receipt.get("alg") == ALG, str(receipt.get("alg")))
        snapshot, params, buckets = receipt["snapshot"], receipt["params"], receipt["buckets"]
        check("snapshot_hash", H(snapshot) == receipt["snapshot_hash"])
        check("snapshot_bound_to_prev", snapshot.get("prev_receipt_hash") == receipt["prev_receipt_hash"])
        check("buckets", *check_buckets(snapshot, buckets))
        check("params_hash", H(params) == receipt["params_hash"])
        nonce = receipt["nonces"]["bureau"]
        check("bureau_commitment", commitment(nonce) == receipt["commitments"]["bureau"])
        seed = compute_seed(snapshot_hash=H(snapshot), params_hash=H(params), bureau_nonce=nonce,
                            procuratorate_nonce=receipt["nonces"].get("procuratorate"),
                            public_value=receipt.get("public_value"), round_no=receipt["round"])
        check("seed", seed == receipt["seed"])
        if checks["buckets"]["ok"]:
            check("order", compute_order(snapshot, buckets, params, seed) == receipt["order"])
        else:
            check("order", False, "not recomputed: the buckets do not match the snapshot")
        check("receipt_hash", receipt_hash(receipt) == receipt["receipt_hash"])
        ok, detail = verify_contact_log(receipt.get("contact_log", []), receipt["receipt_hash"])
        check("contact_log_chain", ok, detail)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check("well_formed", False, f"{type(exc).__name__}: {exc}")
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}

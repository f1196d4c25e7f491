"""The verifiable balanced draw of DRAW.md (R11.1, R11.2, R14.1): pure code, standard library only.

This module is shared by the service and by the stand-alone verifier
(`python -m services.selection.draw.verify receipt.json`); it must work with the standard library
alone, so anyone can recompute a draw from its receipt (`aes.py` uses OpenSSL through `cryptography`
when that is installed, as in the service, and its own reference AES otherwise).

Version 3 keeps every property of DRAW.md's algorithm; what differs from version 1 is the
per-person pseudorandom function (version 3) and how the pool is written down (version 2).

Version 3: each person's key is AES-256 of the 16 bytes of their UUID, with the seed as the AES
key, instead of HMAC-SHA256(seed, group + "|" + id). Both are pseudorandom functions of the seed,
one value per person, so row order never matters and removing someone never reorders the rest;
AES is a permutation, so two people can never even tie. What changes is the cost: OpenSSL keys
20 000 people in one call (< 1 ms) where 20 000 HMACs cost 25-40 ms in Python, which is what kept
a draw over 20 000 people above 50 ms. `aes.py`'s reference AES is held equal to OpenSSL's and to
the FIPS-197 example by tests. Receipts of version 2 are still verified with their HMAC keys.

Version 2: a draw over 20 000 people costs what changed since the previous draw rather than a
fresh 2 MB document:
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
- seed = H([alg, H(snapshot), H(params), bureau_nonce, procuratorate_nonce, public_value, round])
  i.e. SHA-256 of the canonical JSON *list* of those seven values (nonces as given, hex strings or
  null; round an integer). The AES key (version 2: the HMAC key) is the 32 raw bytes of the seed.
- members = rows of every bucket, minus ids in params["excluded"], minus served >= params
  ["yearly_cap"] (when set), minus rows without params["specialty"] (when set, R11.2);
  "local" = members whose district equals params["district"]; "cross" = the other members.
- ids in the buckets are canonical UUID text (lowercase, hyphenated); block(id) = its 16 bytes.
- mac(id) = AES-256 with the 32 seed bytes as key, of block(id) (a person is in one group only);
  version 2: mac(g, id) = HMAC-SHA256(seed bytes, UTF-8 of g + "|" + id).
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

import functools
import hashlib
import heapq
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.selection.draw import aes

ALG = "people-supervisor-draw/3"
ALG_V2 = "people-supervisor-draw/2"  # still verified: its receipts differ only in the per-person key
ALGORITHMS = (ALG_V2, ALG)
GROUPS = ("local", "cross")
GENESIS_HASH = "0" * 64
PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_FORMULA_SEED = (
    "seed = sha256(canonical_json([alg, sha256(canonical_json(snapshot)), "
    "sha256(canonical_json(params)), bureau_nonce, procuratorate_nonce, public_value, round])); "
    "canonical_json = json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False) "
    "as UTF-8; snapshot.buckets[prefix] = sha256(canonical_json(rows whose id starts with prefix, "
    "sorted by id)); "
)
_FORMULA_ORDER = (
    "weighted key = (-ln(u) * B ** (served - cmin), id), u = (first 8 bytes of the {mac} as "
    "big-endian int + 1) / 2**64; order = first need + alternates by key"
)
SEED_FORMULA = _FORMULA_SEED + (
    "mac = aes256(key = seed_bytes, block = the 16 bytes of the id's UUID); "
    "strict key = (served - cmin, mac, id); ") + _FORMULA_ORDER.format(mac="mac")
SEED_FORMULA_V2 = _FORMULA_SEED + (  # what receipts of version 2 say
    "strict key = (served - cmin, hmac_sha256(seed_bytes, group + '|' + id), id); "
) + _FORMULA_ORDER.format(mac="hmac")
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
                 procuratorate_nonce: str | None, public_value: str | None, round_no: int,
                 alg: str = ALG) -> str:
    """The seed of SEED_FORMULA (hex)."""
    return H([alg, snapshot_hash, params_hash, bureau_nonce, procuratorate_nonce, public_value, round_no])


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


def _hmac_keys(rows: Sequence[Mapping[str, Any]], group: str, seed: bytes) -> list[bytes]:
    """Version 2: [HMAC(seed, group + "|" + id) + UTF-8 of id] for rows (`hmac_sha256` written out).

    The id is appended so that the bytes compare as the (mac, id) of the key; the group prefix is
    hashed into the inner state once.
    """
    pads = hmac_pads(seed)
    inner = pads[0].copy()
    inner.update((group + "|").encode("utf-8"))
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


@functools.lru_cache(maxsize=1 << 16)
def uuid_block(supervisor_id: str) -> bytes:
    """The 16 bytes of a supervisor id, which must be canonical UUID text (one text per block)."""
    if not UUID_RE.match(supervisor_id):
        raise ValueError(f"id {supervisor_id!r} is not a lowercase hyphenated UUID")
    return bytes.fromhex(supervisor_id.replace("-", ""))


def _split_blocks(data: bytes) -> list[bytes]:
    return [block for (block,) in struct.iter_unpack("16s", data)]


def _aes_keys(rows: Sequence[Mapping[str, Any]], group: str, seed: bytes) -> list[bytes]:
    """Version 3: [AES-256(seed, block(id))] for rows, all of them in one call of the cipher.

    Distinct ids are distinct blocks and AES is a permutation, so these keys never tie: the id of
    DRAW.md's (mac, id) can never decide, and is left out. A person belongs to one group only, so
    the group needs no place in the key (version 2 hashed it in).
    """
    return _split_blocks(aes.encrypt_blocks(seed, b"".join([uuid_block(r["id"]) for r in rows])))


# the per-person keys of each version: (rows, group, seed bytes) -> one bytes key per row, compared
# as the (mac, id) part of the draw key
KEYINGS = {ALG_V2: _hmac_keys, ALG: _aes_keys}


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
                mode: str = STRICT, weight_base: float = 4.0, limit: int | None = None,
                alg: str = ALG) -> list[str]:
    """The first `limit` (None: all) of one group's rows in draw order (R11.1 balanced opportunity).

    Always equal to the full sort by key cut at `limit`; strict mode gets there by keying only the
    least-served tiers it needs (the key's first part is the tier), weighted mode keys everyone.
    """
    if not rows or limit == 0:
        return []
    keys_of = KEYINGS[alg]
    seed = bytes.fromhex(seed_hex)
    served = [r["served"] for r in rows]
    cmin = min(served)
    if mode == STRICT:
        tiers: dict[int, list[Mapping[str, Any]]] = {}
        if max(served) == cmin:  # everyone level (e.g. in January): one tier, no sorting into tiers
            tiers[0] = list(rows)
        else:
            for r, n in zip(rows, served, strict=True):
                tiers.setdefault(n - cmin, []).append(r)
        out: list[str] = []
        for tier in sorted(tiers):
            members = tiers[tier]
            keys = keys_of(members, group, seed)
            room = None if limit is None else limit - len(out)
            positions = range(len(keys))
            chosen = (sorted(positions, key=keys.__getitem__) if room is None or room >= len(keys)
                      else heapq.nsmallest(room, positions, key=keys.__getitem__))
            out.extend(members[i]["id"] for i in chosen)
            if limit is not None and len(out) >= limit:
                break
        return out
    if mode == WEIGHTED:
        if not weight_base > 1:
            raise ValueError("weight_base must be > 1")
        powers: dict[int, float] = {}
        keyed_w = []
        for key, r in zip(keys_of(rows, group, seed), rows, strict=True):
            u = (int.from_bytes(key[:8], "big") + 1) / 18446744073709551616  # 2**64
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


@dataclass(frozen=True)
class Columns:
    """Pool rows as columns, in pool order: what the service's fast strict draw reads.

    The service builds them once per bucket (a bucket's content never changes under its hash) and
    joins them per draw, so a draw reads no row dictionaries and converts no ids.
    """
    ids: list[str]
    blocks: bytes  # block(id) of every row, 16 bytes each
    served: list[int]
    districts: list[str]
    specialties: list[Sequence[str]]

    @classmethod
    def of_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Columns:
        return cls([r["id"] for r in rows], b"".join([uuid_block(r["id"]) for r in rows]),
                   [r["served"] for r in rows], [r["district"] for r in rows], [r["specialties"] for r in rows])

    @classmethod
    def join(cls, parts: Sequence[Columns]) -> Columns:
        ids: list[str] = []
        served: list[int] = []
        districts: list[str] = []
        specialties: list[Sequence[str]] = []
        for part in parts:
            ids += part.ids
            served += part.served
            districts += part.districts
            specialties += part.specialties
        return cls(ids, b"".join([part.blocks for part in parts]), served, districts, specialties)


def strict_order_fast(pool: Columns, params: Mapping[str, Any], seed_hex: str,
                      limits: Mapping[str, int]) -> dict[str, list[str]]:
    """`compute_order` for a strict draw of the current version, keying the whole pool in one call.

    Everyone is keyed (one AES call over the pool's blocks: < 1 ms for 20 000), then people are
    taken in (served, mac) order and only those candidates are tested for membership (exclusions,
    yearly cap, specialty) and sorted into their group, until each group has its need + alternates.
    Within a group, (served, mac) order is (served - cmin, mac, id) order: cmin is the same for the
    whole group, and macs never tie. So the result is exactly the reference `order_group`'s.
    """
    keys = _split_blocks(aes.encrypt_blocks(bytes.fromhex(seed_hex), pool.blocks))
    excluded = params.get("excluded") or {}
    cap = params.get("yearly_cap")
    specialty = params.get("specialty")
    district = params["district"]
    ids, served, districts, specialties = pool.ids, pool.served, pool.districts, pool.specialties

    def group_of(p: int) -> str | None:
        if ids[p] in excluded or (cap is not None and served[p] >= cap):
            return None
        if specialty and specialty not in specialties[p]:
            return None
        return "local" if districts[p] == district else "cross"

    if not served:
        return {g: [] for g in GROUPS}
    tiers: dict[int, Sequence[int]] = {}
    if min(served) == max(served):
        tiers[served[0]] = range(len(served))
    else:
        for p, n in enumerate(served):
            tiers.setdefault(n, []).append(p)  # type: ignore[union-attr]
    order: dict[str, list[str]] = {g: [] for g in GROUPS}
    for tier in sorted(tiers):
        positions = tiers[tier]
        before = {g: len(order[g]) for g in GROUPS}
        # the first `look` of this tier by mac, widened until each group is full or the tier is spent
        look = 4 * sum(limits.values()) + 16
        while True:
            for g in GROUPS:
                del order[g][before[g]:]
            for p in heapq.nsmallest(look, positions, key=keys.__getitem__):
                g = group_of(p)
                if g is not None and len(order[g]) < limits[g]:
                    order[g].append(ids[p])
            if all(len(order[g]) >= limits[g] for g in GROUPS) or look >= len(positions):
                break
            look *= 4
        if all(len(order[g]) >= limits[g] for g in GROUPS):
            break
    return order


def compute_order(snapshot: Mapping[str, Any], buckets: Mapping[str, Sequence[Mapping[str, Any]]],
                  params: Mapping[str, Any], seed_hex: str, *, alg: str = ALG,
                  columns: Mapping[str, Columns] | None = None) -> dict[str, list[str]]:
    """order per group: the people to contact first, then the alternates, in order.

    `columns` (bucket hash → the same bucket as Columns) lets a strict draw of the current version
    take the fast path; the result is the same (a property test holds them equal).
    """
    mode = params.get("balance_mode", STRICT)
    limits = {g: group_limit(params, g) for g in GROUPS}
    if columns is not None and alg == ALG and mode == STRICT and None not in limits.values():
        pool = Columns.join([columns[snapshot["buckets"][prefix]] for prefix in sorted(snapshot["buckets"])])
        return strict_order_fast(pool, params, seed_hex, limits)
    members = members_by_group(snapshot, buckets, params)
    base = float(params.get("weight_base", 4.0))
    return {g: order_group(members[g], g, seed_hex, mode=mode, weight_base=base,
                           limit=group_limit(params, g), alg=alg) for g in GROUPS}


def build_receipt(*, draw_id: str, request_id: str, round_no: int, snapshot: dict,
                  buckets: Mapping[str, Sequence[Mapping[str, Any]]], params: dict, bureau_nonce: str,
                  procuratorate_nonce: str | None, public_value: str | None, prev_receipt_hash: str,
                  drawn_at: str, alg: str = ALG, columns: Mapping[str, Columns] | None = None) -> dict:
    """Run the draw and return its receipt (with receipt_hash, without the buckets themselves).

    `columns`: the buckets as Columns too (see `compute_order`). `alg` is for tests of the verifier
    only: the service always draws with the current ALG.
    """
    if snapshot.get("prev_receipt_hash") != prev_receipt_hash:
        raise ValueError("snapshot must be bound to the previous receipt")
    snapshot_hash = H(snapshot)
    params_hash = H(params)
    seed = compute_seed(snapshot_hash=snapshot_hash, params_hash=params_hash, bureau_nonce=bureau_nonce,
                        procuratorate_nonce=procuratorate_nonce, public_value=public_value,
                        round_no=round_no, alg=alg)
    receipt = {
        "alg": alg,
        "seed_formula": SEED_FORMULA if alg == ALG else SEED_FORMULA_V2,
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
        "order": compute_order(snapshot, buckets, params, seed, alg=alg, columns=columns),
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
        if not all(isinstance(i, str) and UUID_RE.match(i) for i in ids):
            return False, f"bucket {prefix}: an id is not a lowercase hyphenated UUID"
    return True, f"{len(snapshot['buckets'])} buckets"


def verify_receipt(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute everything a receipt file alone can prove; {ok, checks: {name: {ok, detail}}}."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks[name] = {"ok": bool(ok), "detail": detail}

    try:
        alg = receipt.get("alg")
        check("alg", alg in ALGORITHMS, f"{alg} (this verifier knows {', '.join(ALGORITHMS)})")
        if alg not in ALGORITHMS:
            alg = ALG  # recompute as the current version, so every other check still reports
        snapshot, params, buckets = receipt["snapshot"], receipt["params"], receipt["buckets"]
        check("snapshot_hash", H(snapshot) == receipt["snapshot_hash"])
        check("snapshot_bound_to_prev", snapshot.get("prev_receipt_hash") == receipt["prev_receipt_hash"])
        check("buckets", *check_buckets(snapshot, buckets))
        check("params_hash", H(params) == receipt["params_hash"])
        nonce = receipt["nonces"]["bureau"]
        check("bureau_commitment", commitment(nonce) == receipt["commitments"]["bureau"])
        seed = compute_seed(snapshot_hash=H(snapshot), params_hash=H(params), bureau_nonce=nonce,
                            procuratorate_nonce=receipt["nonces"].get("procuratorate"),
                            public_value=receipt.get("public_value"), round_no=receipt["round"], alg=alg)
        check("seed", seed == receipt["seed"])
        if checks["buckets"]["ok"]:
            check("order", compute_order(snapshot, buckets, params, seed, alg=alg) == receipt["order"])
        else:
            check("order", False, "not recomputed: the buckets do not match the snapshot")
        check("receipt_hash", receipt_hash(receipt) == receipt["receipt_hash"])
        ok, detail = verify_contact_log(receipt.get("contact_log", []), receipt["receipt_hash"])
        check("contact_log_chain", ok, detail)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check("well_formed", False, f"{type(exc).__name__}: {exc}")
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}

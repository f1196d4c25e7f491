"""The verifiable balanced draw of DRAW.md (R11.1, R11.2, R12.1, R14.1): pure code, standard library only.

This module is shared by the service and by the stand-alone verifier
(`python -m services.selection.draw.verify receipt.json`); it must work with the standard library
alone, so anyone can recompute a draw from its receipt (`aes.py` uses OpenSSL through `cryptography`
when that is installed, as in the service, and its own reference AES otherwise).

Version 4 (`people-supervisor-draw/4`, DRAW.md version 2) is the protocol nobody can steer:
- both agencies commit before either reveals: the procuratorate's commitment comes with the
  request, the bureau's with the acceptance, which also freezes the pool snapshot and the params;
  the procuratorate reveals its nonce only after it saw the acceptance, and the draw runs after
  the reveal (or its timeout: then without it, and the receipt says why). A beacon named at
  acceptance (source and round, value unknown to both) adds public entropy; a request the bureau
  records itself (paper or phone) has no procuratorate nonce and always names one;
- canonical JSON is RFC 8785 (JCS, `jcs.py`) and receipts hold no floating-point numbers;
- the contact log is checked against the order, with the evidence of every outcome recorded by
  someone other than the supervisor (`contacts.py`).
Kept from earlier versions: the pool as content-addressed buckets (v2) and the per-person key
AES-256(seed, UUID bytes) (v3).

Encodings (all of them are part of the receipt's meaning, change them only with a new ALG):
- canonical(x) = RFC 8785 JCS of x as UTF-8 (no floats); H(x) = SHA-256 hex of canonical(x) (of the
  bytes themselves when x is bytes).
- row = {"district", "id", "served", "specialties" (sorted)}; ids are the supervisors' UUIDs in
  lowercase hyphenated text (pseudonymous: no names, phones).
- bucket = the list of rows whose id starts with its two-character prefix, sorted by id;
  snapshot = {"chain_head": hex, "year": int, "buckets": {prefix: H(bucket)}}, empty buckets left
  out; chain_head = the hash of the newest chain entry when the snapshot was taken. The receipt
  file carries the buckets themselves under "buckets" {hash: rows}.
- commitment(n) = SHA-256 hex of the 32 raw bytes of a nonce n (64 lowercase hex characters).
- seed = H([alg, H(snapshot), H(params), bureau_nonce, procuratorate_nonce, beacon_value, round])
  (nonces as hex strings or null, the beacon value a string or null, round an integer). The AES key
  is the 32 raw bytes of the seed.
- members = rows of every bucket, minus ids in params["excluded"], minus served >= params
  ["yearly_cap"] (when set), minus rows without params["specialty"] (when set, R11.2);
  "local" = members whose district equals params["district"]; "cross" = the other members.
- mac(id) = AES-256 with the 32 seed bytes as key, of the id's 16 UUID bytes.
- strict key   = (served - cmin, mac)                                   (default; macs never tie)
  weighted key = (-ln(u) * B ** (served - cmin), id), u = (int(mac, big-endian) + 1) / (2**128 + 1),
  B = params["weight_base"], an integer >= 2, so B ** k is exact; -ln(u) uses math.log (IEEE
  doubles and a faithful libm give the same bits on every common platform).
  cmin = the least `served` among the group's members.
- order[g] = the first need[g] + alternates ids of the group's members sorted by key, where
  need = params["need"] (seats this round must fill) and alternates = params["alternates"]; a
  group with need 0 has an empty order.
- receipt_hash = H(receipt without "receipt_hash", "contact_log" and "buckets"): the buckets are
  bound through the snapshot's hashes. The contact log is a chain starting from receipt_hash:
  entry_hash = H(entry without "hash"), each entry naming prev_hash; the first prev_hash is the
  receipt_hash. `contacts.verify_contacts` checks it follows the order (params["position_base"],
  params["contact_rules"]).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.selection.draw import aes, contacts, jcs

ALG = "people-supervisor-draw/4"
ALGORITHMS = (ALG,)
GROUPS = ("local", "cross")
GENESIS_HASH = "0" * 64
PREFIX_RE = re.compile(r"^[0-9a-f]{2}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NONCE_RE = re.compile(r"^[0-9a-f]{64}$")
SEED_FORMULA = (
    "seed = sha256(jcs([alg, sha256(jcs(snapshot)), sha256(jcs(params)), bureau_nonce, procuratorate_nonce, "
    "beacon_value, round])); jcs = RFC 8785 canonical JSON as UTF-8; snapshot.buckets[prefix] = "
    "sha256(jcs(rows whose id starts with prefix, sorted by id)); mac = aes256(key = seed_bytes, block = the "
    "16 bytes of the id's UUID); strict key = (served - cmin, mac); weighted key = (-ln(u) * B ** (served - "
    "cmin), id), u = (int(mac) + 1) / (2**128 + 1); order = first need + alternates by key"
)
STRICT = "strict"
WEIGHTED = "weighted"


def canonical(obj: Any) -> bytes:
    """The RFC 8785 (JCS) canonical JSON bytes of obj; floats are refused."""
    return jcs.canonical(obj)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def H(obj: Any) -> str:
    """SHA-256 hex of canonical(obj), or of the bytes themselves."""
    return sha256_hex(obj if isinstance(obj, bytes) else canonical(obj))


def commitment(nonce: str) -> str:
    """SHA-256 hex of the raw bytes of a 64-hex-digit nonce (what each agency publishes before the draw)."""
    if not isinstance(nonce, str) or not NONCE_RE.match(nonce):
        raise ValueError("a nonce is 64 lowercase hex digits (32 bytes)")
    return sha256_hex(bytes.fromhex(nonce))


def snapshot_row(supervisor_id: str, district: str, specialties: Iterable[str], served: int) -> dict:
    """One pseudonymous pool row (keys in sorted order: plain json.dumps is then canonical)."""
    return {"district": district, "id": str(supervisor_id), "served": int(served),
            "specialties": sorted(specialties)}


def bucket_prefix(supervisor_id: str) -> str:
    return supervisor_id[:2]


def make_pool(rows: Iterable[Mapping[str, Any]], *, chain_head: str,
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
    return {"chain_head": chain_head, "year": year, "buckets": manifest}, buckets


def compute_seed(*, snapshot_hash: str, params_hash: str, bureau_nonce: str | None,
                 procuratorate_nonce: str | None, beacon_value: str | None, round_no: int) -> str:
    """The seed of SEED_FORMULA (hex)."""
    return H([ALG, snapshot_hash, params_hash, bureau_nonce, procuratorate_nonce, beacon_value, round_no])


@functools.lru_cache(maxsize=1 << 16)
def uuid_block(supervisor_id: str) -> bytes:
    """The 16 bytes of a supervisor id, which must be canonical UUID text (one text per block)."""
    if not UUID_RE.match(supervisor_id):
        raise ValueError(f"id {supervisor_id!r} is not a lowercase hyphenated UUID")
    return bytes.fromhex(supervisor_id.replace("-", ""))


def _split_blocks(data: bytes) -> list[bytes]:
    return [block for (block,) in struct.iter_unpack("16s", data)]


def aes_keys(rows: Sequence[Mapping[str, Any]], seed: bytes) -> list[bytes]:
    """[AES-256(seed, block(id))] for rows, all of them in one call of the cipher (macs never tie)."""
    return _split_blocks(aes.encrypt_blocks(seed, b"".join([uuid_block(r["id"]) for r in rows])))


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


def order_group(rows: Sequence[Mapping[str, Any]], seed_hex: str, *, mode: str = STRICT,
                weight_base: int = 4, limit: int | None = None) -> list[str]:
    """The first `limit` (None: all) of one group's rows in draw order (R11.1 balanced opportunity).

    Always equal to the full sort by key cut at `limit`; strict mode gets there by keying only the
    least-served tiers it needs (the key's first part is the tier), weighted mode keys everyone.
    """
    if not rows or limit == 0:
        return []
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
            keys = aes_keys(members, seed)
            room = None if limit is None else limit - len(out)
            positions = range(len(keys))
            chosen = (sorted(positions, key=keys.__getitem__) if room is None or room >= len(keys)
                      else heapq.nsmallest(room, positions, key=keys.__getitem__))
            out.extend(members[i]["id"] for i in chosen)
            if limit is not None and len(out) >= limit:
                break
        return out
    if mode == WEIGHTED:
        if not isinstance(weight_base, int) or isinstance(weight_base, bool) or weight_base < 2:
            raise ValueError("weight_base must be an integer >= 2")
        keyed_w = []
        for key, r in zip(aes_keys(rows, seed), rows, strict=True):
            u = (int.from_bytes(key, "big") + 1) / (2**128 + 1)  # in (0, 1): never 0, never 1
            keyed_w.append((-math.log(u) * weight_base ** (r["served"] - cmin), r["id"]))
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
                  params: Mapping[str, Any], seed_hex: str, *,
                  columns: Mapping[str, Columns] | None = None) -> dict[str, list[str]]:
    """order per group: the people to contact first, then the alternates, in order.

    `columns` (bucket hash → the same bucket as Columns) lets a strict draw of the current version
    take the fast path; the result is the same (a property test holds them equal).
    """
    mode = params.get("balance_mode", STRICT)
    limits = {g: group_limit(params, g) for g in GROUPS}
    if columns is not None and mode == STRICT and None not in limits.values():
        pool = Columns.join([columns[snapshot["buckets"][prefix]] for prefix in sorted(snapshot["buckets"])])
        return strict_order_fast(pool, params, seed_hex, limits)
    members = members_by_group(snapshot, buckets, params)
    base = params.get("weight_base", 4)
    return {g: order_group(members[g], seed_hex, mode=mode, weight_base=base, limit=group_limit(params, g))
            for g in GROUPS}


def build_receipt(*, draw_id: str, request_id: str, round_no: int, snapshot: dict,
                  buckets: Mapping[str, Sequence[Mapping[str, Any]]], params: dict, accepted_at: str,
                  commitments: Mapping[str, str | None], bureau_nonce: str, procuratorate_nonce: str | None,
                  procuratorate_nonce_reason: str | None, beacon: Mapping[str, str] | None,
                  prev_receipt_hash: str, drawn_at: str,
                  columns: Mapping[str, Columns] | None = None) -> dict:
    """Run the draw and return its receipt (with receipt_hash, without the buckets themselves).

    `commitments` = {"bureau", "procuratorate"} as published before any nonce was revealed;
    `beacon` = {source, round, value} named at acceptance, or None. `columns`: the buckets as
    Columns too (see `compute_order`).
    """
    if commitment(bureau_nonce) != commitments.get("bureau"):
        raise ValueError("the bureau nonce does not match the bureau's commitment")
    if procuratorate_nonce is not None and commitment(procuratorate_nonce) != commitments.get("procuratorate"):
        raise ValueError("the procuratorate nonce does not match the procuratorate's commitment")
    if procuratorate_nonce is None and not procuratorate_nonce_reason:
        raise ValueError("a draw without the procuratorate nonce must say why")
    if beacon is not None and not isinstance(beacon.get("value"), str):
        raise ValueError("a draw with a named beacon waits for its value")
    snapshot_hash = H(snapshot)
    params_hash = H(params)
    beacon_value = beacon["value"] if beacon else None
    seed = compute_seed(snapshot_hash=snapshot_hash, params_hash=params_hash, bureau_nonce=bureau_nonce,
                        procuratorate_nonce=procuratorate_nonce, beacon_value=beacon_value, round_no=round_no)
    receipt = {
        "alg": ALG,
        "seed_formula": SEED_FORMULA,
        "draw_id": draw_id,
        "request_id": request_id,
        "round": round_no,
        "accepted_at": accepted_at,
        "drawn_at": drawn_at,
        "snapshot": snapshot,
        "snapshot_hash": snapshot_hash,
        "params": params,
        "params_hash": params_hash,
        "commitments": {"bureau": commitments.get("bureau"), "procuratorate": commitments.get("procuratorate")},
        "nonces": {"bureau": bureau_nonce, "procuratorate": procuratorate_nonce},
        "procuratorate_nonce_reason": None if procuratorate_nonce is not None else procuratorate_nonce_reason,
        "beacon": None if beacon is None else {k: beacon[k] for k in ("source", "round", "value")},
        "seed": seed,
        "order": compute_order(snapshot, buckets, params, seed, columns=columns),
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
        snapshot, params, buckets = receipt["snapshot"], receipt["params"], receipt["buckets"]
        check("snapshot_hash", H(snapshot) == receipt["snapshot_hash"])
        check("buckets", *check_buckets(snapshot, buckets))
        check("params_hash", H(params) == receipt["params_hash"])
        nonces, commitments = receipt["nonces"], receipt["commitments"]
        check("bureau_commitment", commitment(nonces["bureau"]) == commitments["bureau"])
        mine = nonces.get("procuratorate")
        if mine is None:
            check("procuratorate_commitment", bool(receipt.get("procuratorate_nonce_reason")),
                  f"drawn without the procuratorate nonce: {receipt.get('procuratorate_nonce_reason')}")
        else:
            check("procuratorate_commitment", commitment(mine) == commitments.get("procuratorate"))
        beacon = receipt.get("beacon")
        beacon_value = None if beacon is None else beacon["value"]
        check("beacon", beacon is None or isinstance(beacon_value, str),
              "none named" if beacon is None else f"{beacon.get('source')} {beacon.get('round')}")
        seed = compute_seed(snapshot_hash=H(snapshot), params_hash=H(params), bureau_nonce=nonces["bureau"],
                            procuratorate_nonce=mine, beacon_value=beacon_value, round_no=receipt["round"])
        check("seed", seed == receipt["seed"])
        if checks["buckets"]["ok"]:
            check("order", compute_order(snapshot, buckets, params, seed) == receipt["order"])
        else:
            check("order", False, "not recomputed: the buckets do not match the snapshot")
        check("receipt_hash", receipt_hash(receipt) == receipt["receipt_hash"])
        log = receipt.get("contact_log", [])
        ok, detail = verify_contact_log(log, receipt["receipt_hash"])
        check("contact_log_chain", ok, detail)
        check("contacts_follow_order", *contacts.verify_contacts(log, receipt["order"], params))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check("well_formed", False, f"{type(exc).__name__}: {exc}")
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}

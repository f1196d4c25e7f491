"""Real draw receipts for the browser tests, made by the selection service's own draw code (R11.1, R12.1).

`build_receipt` runs the draw of `services.selection.draw.algorithm` exactly as the service does, with the
params the service records (need, alternates, position_base, contact_rules, exclusions, yearly cap), and
the contact log is chained from the receipt hash as `append_contact` writes it. Each receipt is returned
as GET /draws/{id}/receipt serves it: with its buckets and its contact log.
"""

from __future__ import annotations

import copy
import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta

from services.selection.draw import algorithm as alg
from services.selection.draw.contacts import DEFAULT_RULES

BUREAU_NONCE = "b1" * 32
PROCURATORATE_NONCE = "c7" * 32
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def people(n: int, *, districts=("环翠区", "文登区", "荣成市"), seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "district": districts[i % len(districts)],
             "specialties": ["法律"] if i % 4 == 0 else ["会计审计", "医学"], "served": i % 3}
            for i in range(n)]


def draw(rows: list[dict], *, mode: str = "strict", with_procuratorate: bool = True, beacon: dict | None = None,
         excluded: dict | None = None, specialty: str | None = None) -> dict:
    snapshot, buckets = alg.make_pool(rows, chain_head="ab" * 32, year=2026)
    params = {
        "request_id": "9b0f3a52-6f0e-4d4a-9d59-1c1a0c7e0a11", "activity_id": "act-1", "activity_date": "2026-03-10",
        "district": "环翠区", "specialty": specialty, "need": {"local": 2, "cross": 1}, "alternates": 3,
        "position_base": {"local": 0, "cross": 0}, "excluded": excluded or {}, "yearly_cap": 5,
        "balance_mode": mode, "weight_base": 4, "contact_rules": dict(DEFAULT_RULES), "alg": alg.ALG,
    }
    proc = PROCURATORATE_NONCE if with_procuratorate else None
    receipt = alg.build_receipt(
        draw_id="5c1d2f0e-7a43-4b8e-9a76-0d2b1e6f4c21", request_id=params["request_id"], round_no=1,
        snapshot=snapshot, buckets=buckets, params=params, accepted_at="2026-03-01T08:00:00+08:00",
        commitments={"bureau": alg.commitment(BUREAU_NONCE),
                     "procuratorate": alg.commitment(PROCURATORATE_NONCE) if proc else None},
        bureau_nonce=BUREAU_NONCE, procuratorate_nonce=proc,
        procuratorate_nonce_reason=None if proc else "recorded by the bureau", beacon=beacon,
        prev_receipt_hash="ab" * 32, drawn_at="2026-03-02T09:00:00+08:00")
    receipt["buckets"] = buckets
    receipt["contact_log"] = []
    return receipt


def add_contact(receipt: dict, group: str, position: int, outcome: str, recorded_by: str,
                attempts_minutes_before: tuple[int, ...] = (), *, reason: str | None = None) -> dict:
    """Append a contact-log entry as the service writes it (seq from 1, chained from the receipt hash)."""
    log = receipt["contact_log"]
    at = T0 + timedelta(hours=len(log) + 1)
    entry = {
        "seq": len(log) + 1, "at": at.isoformat(), "prev_hash": log[-1]["hash"] if log else receipt["receipt_hash"],
        "supervisor_id": receipt["order"][group][position - 1], "group": group, "position": position,
        "outcome": outcome, "recorded_by": recorded_by,
        "attempts": [{"at": (at - timedelta(minutes=m)).isoformat(), "channel": "phone"}
                     for m in attempts_minutes_before],
        "reason_sha256": hashlib.sha256(reason.encode()).hexdigest() if reason else None,
    }
    entry["hash"] = alg.contact_entry_hash(entry)
    log.append(entry)
    return entry


def staffed(rows: list[dict] | None = None, **kw) -> dict:
    """A draw whose seats were filled: a decline, a clerk's unreachable with two calls, confirmations."""
    receipt = draw(rows or people(120), **kw)
    add_contact(receipt, "local", 1, "declined", "supervisor", reason="出差")
    add_contact(receipt, "local", 2, "confirmed", "bureau", (15,))
    add_contact(receipt, "local", 3, "confirmed", "supervisor")
    add_contact(receipt, "cross", 1, "unreachable", "bureau", (40, 20))
    add_contact(receipt, "cross", 2, "confirmed", "supervisor")
    return receipt


def tampered(receipt: dict, how: str) -> dict:
    """A copy of the receipt with one field changed; what the verifiers must notice."""
    bad = copy.deepcopy(receipt)
    if how == "order":  # the first two people to contact swapped
        local = bad["order"]["local"]
        local[0], local[1] = local[1], local[0]
    elif how == "nonce":  # one hex digit of the bureau's nonce
        nonce = bad["nonces"]["bureau"]
        bad["nonces"]["bureau"] = ("0" if nonce[0] != "0" else "1") + nonce[1:]
    elif how == "seed":
        seed = bad["seed"]
        bad["seed"] = seed[:-1] + ("0" if seed[-1] != "0" else "1")
    elif how == "served":  # a pool row made to look more served (and its bucket no longer matches)
        first_bucket = next(iter(bad["buckets"].values()))
        first_bucket[0]["served"] += 1
    elif how == "contact_skip":  # a clerk's record naming the 4th local before the window opened to them
        bad["contact_log"] = []
        bad_entry = add_contact(bad, "local", 4, "confirmed", "supervisor")
        assert bad_entry["seq"] == 1
    elif how == "float":  # a float where canonical JSON refuses one
        bad["params"]["weight_base"] = 4.0
    else:
        raise ValueError(how)
    return bad

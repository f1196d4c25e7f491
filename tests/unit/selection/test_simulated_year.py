"""A simulated year (DRAW.md): strict balance keeps yearly counts within 3; a uniform draw does not (R11.1)."""

import hashlib
import random
import uuid

from services.selection.draw import algorithm as alg

DISTRICTS = ("环翠区", "文登区", "荣成市", "乳山市", "高区", "经区")
CAP = 12


def simulate(*, balanced: bool, seed: int = 2025) -> dict[str, int]:
    """250 activities, 3 seats (2 local, 1 cross), 20 % of contacts decline; returns confirmed counts."""
    rng = random.Random(seed)
    pool = [{"id": str(uuid.UUID(int=rng.getrandbits(128))), "district": DISTRICTS[i % 6], "specialties": []}
            for i in range(150)]
    served = {p["id"]: 0 for p in pool}
    for activity in range(250):
        district = rng.choice(DISTRICTS)
        rows = [{**p, "served": served[p["id"]] if balanced else 0} for p in pool if served[p["id"]] < CAP]
        snapshot, buckets = alg.make_pool(rows, chain_head=alg.GENESIS_HASH, year=2025)
        params = {"district": district, "specialty": None, "balance_mode": "strict"}
        seed = alg.compute_seed(snapshot_hash=alg.H(snapshot), params_hash=alg.H(params),
                                bureau_nonce=hashlib.sha256(f"{seed}-{activity}".encode()).hexdigest(),
                                procuratorate_nonce=None, beacon_value=None, round_no=1)
        order = alg.compute_order(snapshot, buckets, params, seed)
        for group, seats in (("local", 2), ("cross", 1)):
            filled = 0
            for person in order[group]:  # contact in draw order; a decliner is replaced by the next
                if filled == seats:
                    break
                if rng.random() < 0.2:
                    continue
                served[person] += 1
                filled += 1
    return served


def spread(counts: dict[str, int]) -> int:
    return max(counts.values()) - min(counts.values())


def test_r11_1_strict_balance_keeps_max_minus_min_within_3_over_a_year():
    counts = simulate(balanced=True)
    assert sum(counts.values()) == 750
    assert spread(counts) <= 3, sorted(counts.values())
    assert max(counts.values()) <= CAP


def test_r11_1_a_uniform_draw_fails_the_same_check():
    counts = simulate(balanced=False)
    assert spread(counts) > 3, sorted(counts.values())

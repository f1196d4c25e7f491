"""The pure draw (DRAW.md): determinism, independence of row order, uniformity, weighting (R11.1, R11.2)."""

import hashlib
import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from services.selection.draw import algorithm as alg
from tests.unit.selection.stats import Z_0_001_TWO_SIDED, binomial_z, chi2_sf, chi_square

NONCE = "ab" * 32
PROC = "cd" * 32
PREV = alg.GENESIS_HASH


def people(n: int, *, districts=("环翠区", "文登区"), served=lambda i: 0, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": str(uuid.UUID(int=rng.getrandbits(128))), "district": districts[i % len(districts)],
         "specialties": ["法律"] if i % 5 == 0 else ["会计审计", "医学"], "served": served(i)}
        for i in range(n)
    ]


def params(**overrides) -> dict:
    base = {"request_id": "r1", "district": "环翠区", "specialty": None, "seats": {"local": 2, "cross": 1},
            "balance_mode": "strict", "weight_base": 4}
    return {**base, **overrides}


def receipt_for(rows, *, nonce=NONCE, proc=PROC, round_no=1, beacon=None, **param_overrides) -> dict:
    """The receipt as GET /draws/{id}/receipt serves it: with the buckets it names."""
    snapshot, buckets = alg.make_pool(rows, chain_head=PREV, year=2026)
    receipt = alg.build_receipt(
        draw_id="d1", request_id="r1", round_no=round_no, snapshot=snapshot, buckets=buckets,
        params=params(**param_overrides), accepted_at="2026-01-04T00:00:00+00:00",
        commitments={"bureau": alg.commitment(nonce), "procuratorate": alg.commitment(proc) if proc else None},
        bureau_nonce=nonce, procuratorate_nonce=proc, procuratorate_nonce_reason=None if proc else "not revealed",
        beacon=beacon, prev_receipt_hash=PREV, drawn_at="2026-01-05T00:00:00+00:00",
    )
    return {**receipt, "buckets": buckets}


def test_r11_1_same_inputs_give_a_byte_identical_receipt():
    rows = people(50)
    assert alg.canonical(receipt_for(rows)) == alg.canonical(receipt_for([dict(r) for r in rows]))


def test_r11_1_shuffled_snapshot_rows_give_the_same_order():
    rows = people(60)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert receipt_for(rows)["order"] == receipt_for(shuffled)["order"]
    # the per-group ordering itself never looks at row order either
    seed = receipt_for(rows)["seed"]
    local = [r for r in rows if r["district"] == "环翠区"]
    assert alg.order_group(local, seed) == alg.order_group(local[::-1], seed)


def test_r11_1_one_changed_nonce_bit_changes_the_order():
    rows = people(40)
    flipped = format(int(NONCE, 16) ^ 1, "064x")
    a, b = receipt_for(rows), receipt_for(rows, nonce=flipped)
    assert a["seed"] != b["seed"]
    assert a["order"] != b["order"]
    assert receipt_for(rows, proc="ce" * 32)["order"] != a["order"]
    assert receipt_for(rows, round_no=2)["order"] != a["order"]


def test_r11_1_removing_someone_never_reorders_the_rest():
    rows = people(30)
    seed = receipt_for(rows)["seed"]
    local = [r for r in rows if r["district"] == "环翠区"]
    full = alg.order_group(local, seed)
    gone = full[3]
    rest = alg.order_group([r for r in local if r["id"] != gone], seed)
    assert rest == [i for i in full if i != gone]


def test_r11_1_groups_are_local_and_cross_and_r11_2_specialty_filters_both():
    rows = people(30, districts=("环翠区", "文登区", "荣成市"))
    r = receipt_for(rows, specialty="法律")
    by_id = {row["id"]: row for row in rows}
    assert r["order"]["local"] and r["order"]["cross"]
    assert all(by_id[i]["district"] == "环翠区" for i in r["order"]["local"])
    assert all(by_id[i]["district"] != "环翠区" for i in r["order"]["cross"])
    chosen = r["order"]["local"] + r["order"]["cross"]
    assert set(chosen) == {row["id"] for row in rows if "法律" in row["specialties"]}


def test_r11_1_strict_balance_puts_the_least_served_first():
    rows = people(40, served=lambda i: i % 4)
    r = receipt_for(rows)
    by_id = {row["id"]: row for row in rows}
    for group in alg.GROUPS:
        served = [by_id[i]["served"] for i in r["order"][group]]
        assert served == sorted(served)


def test_r11_1_pool_buckets_hold_their_prefix_in_id_order_and_hash_to_their_name():
    rows = people(300)
    snapshot, buckets = alg.make_pool(rows, chain_head=PREV, year=2026)
    assert snapshot["chain_head"] == PREV and snapshot["year"] == 2026
    assert sum(len(b) for b in buckets.values()) == 300
    for prefix, digest in snapshot["buckets"].items():
        ids = [r["id"] for r in buckets[digest]]
        assert ids == sorted(ids) and all(i[:2] == prefix for i in ids)
        assert alg.H(buckets[digest]) == digest
    assert alg.check_buckets(snapshot, buckets) == (True, f"{len(snapshot['buckets'])} buckets")


def _seed(i: int) -> str:
    return hashlib.sha256(f"fixed-seed-{i}".encode()).hexdigest()


def test_r11_1_uniformity_chi_square_over_20000_seeds():
    rows = people(20, districts=("环翠区",))
    index = {r["id"]: k for k, r in enumerate(rows)}
    counts = [0] * len(rows)
    for i in range(20_000):
        first = alg.order_group(rows, _seed(i))[0]
        counts[index[first]] += 1
    p = chi2_sf(chi_square(counts), len(rows) - 1)
    assert p > 0.001, (p, counts)


def test_r11_1_weighted_b4_first_has_served_zero_with_probability_0_8():
    rows = people(20, districts=("环翠区",), served=lambda i: i % 2)
    zero = {r["id"] for r in rows if r["served"] == 0}
    n = 20_000
    hits = sum(alg.order_group(rows, _seed(i), mode="weighted", weight_base=4)[0] in zero
               for i in range(n))
    # P(first served 0) = 10·1 / (10·1 + 10·(1/4)) = 0.8
    assert abs(binomial_z(hits, n, 0.8)) < Z_0_001_TWO_SIDED, hits / n


def test_r11_1_weighted_u_is_never_zero_and_keys_are_finite():
    rows = people(200, served=lambda i: i % 5)
    order = alg.order_group(rows, _seed(1), mode="weighted", weight_base=4)
    assert sorted(order) == sorted(r["id"] for r in rows)


row_strategy = st.lists(
    st.tuples(st.uuids(), st.sampled_from(["环翠区", "文登区", "荣成市"]),
              st.lists(st.sampled_from(["法律", "医学", "金融"]), max_size=3), st.integers(0, 5)),
    max_size=40, unique_by=lambda t: t[0],
)


@settings(max_examples=60, deadline=None)
@given(rows=row_strategy, specialty=st.sampled_from([None, "法律", "医学"]),
       mode=st.sampled_from(["strict", "weighted"]), nonce=st.binary(min_size=32, max_size=32))
def test_r11_1_the_order_holds_exactly_the_snapshot_members_of_each_group(rows, specialty, mode, nonce):
    snapshot_rows = [{"id": str(i), "district": d, "specialties": s, "served": n} for i, d, s, n in rows]
    r = receipt_for(snapshot_rows, nonce=nonce.hex(), specialty=specialty, balance_mode=mode)
    expected = {g: set() for g in alg.GROUPS}
    for row in snapshot_rows:
        if specialty is None or specialty in row["specialties"]:
            expected["local" if row["district"] == "环翠区" else "cross"].add(row["id"])
    for g in alg.GROUPS:
        assert sorted(r["order"][g]) == sorted(expected[g])  # nobody outside the snapshot, nobody twice
    assert alg.verify_receipt(r)["ok"]


def test_r14_1_next_round_excludes_those_tried_and_uses_a_new_seed():
    rows = people(30, districts=("环翠区",))
    first = receipt_for(rows)
    tried = set(first["order"]["local"][:5])
    second = receipt_for(rows, round_no=2, excluded={i: ["tried"] for i in tried})
    assert second["seed"] != first["seed"]
    assert not tried & set(second["order"]["local"])
    assert len(second["order"]["local"]) == 25
    assert alg.verify_receipt(second)["ok"]


def test_r11_1_excluded_people_and_those_at_the_yearly_cap_are_never_ordered():
    rows = people(40, districts=("环翠区",), served=lambda i: i % 4)
    at_cap = {r["id"] for r in rows if r["served"] >= 3}
    booked = {rows[0]["id"], rows[1]["id"]}
    r = receipt_for(rows, yearly_cap=3, excluded={i: ["booked"] for i in booked})
    assert set(r["order"]["local"]) == {row["id"] for row in rows} - at_cap - booked


def test_r12_1_order_holds_need_plus_alternates_per_group_and_nothing_for_a_group_not_needed():
    rows = people(60, districts=("环翠区", "文登区"))
    r = receipt_for(rows, need={"local": 2, "cross": 0}, alternates=5)
    assert len(r["order"]["local"]) == 7 and r["order"]["cross"] == []
    full = receipt_for(rows, need={"local": 2, "cross": 0})  # no alternates named: whole group
    assert len(full["order"]["local"]) == 30
    # same inputs apart from the cut: the cut list is the head of the full order
    seed = r["seed"]
    local = [row for row in rows if row["district"] == "环翠区"]
    assert r["order"]["local"] == alg.order_group(local, seed)[:7]


@settings(max_examples=80, deadline=None)
@given(served=st.lists(st.integers(0, 3), min_size=1, max_size=60), limit=st.integers(0, 70),
       mode=st.sampled_from(["strict", "weighted"]), seed=st.binary(min_size=32, max_size=32))
def test_r11_1_a_cut_order_is_always_the_head_of_the_full_order(served, limit, mode, seed):
    rows = [{"id": str(uuid.UUID(int=i * 7919 + 1)), "served": n} for i, n in enumerate(served)]
    full = alg.order_group(rows, seed.hex(), mode=mode)
    assert alg.order_group(rows, seed.hex(), mode=mode, limit=limit) == full[:limit]


def test_r11_1_reference_aes_gives_the_fips_197_example():
    from services.selection.draw import aes

    key = bytes(range(32))  # FIPS-197 appendix C.3 (AES-256)
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert aes.reference_encrypt_blocks(key, plain).hex() == "8ea2b7ca516745bfeafc49904b496089"
    assert aes.encrypt_blocks(key, plain).hex() == "8ea2b7ca516745bfeafc49904b496089"


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), blocks=st.lists(st.binary(min_size=16, max_size=16), max_size=8))
def test_r11_1_reference_aes_equals_openssl(key, blocks):
    """The verifier's standard-library AES and the service's OpenSSL one give the same bytes."""
    from services.selection.draw import aes

    data = b"".join(blocks)
    assert aes.reference_encrypt_blocks(key, data) == aes.encrypt_blocks(key, data)


def test_r11_1_v3_key_is_aes_256_of_the_uuid_with_the_seed_as_key():
    """The formula of the receipt, computed here independently of the draw module's helpers."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    rows = people(30)
    seed = hashlib.sha256(b"seed").hexdigest()

    def mac(row):
        encryptor = Cipher(algorithms.AES(bytes.fromhex(seed)), modes.ECB()).encryptor()
        return encryptor.update(uuid.UUID(row["id"]).bytes) + encryptor.finalize()

    expected = [r["id"] for r in sorted(rows, key=lambda r: (mac(r), r["id"]))]
    assert alg.order_group(rows, seed) == expected


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(0, 80), alternates=st.integers(0, 12),
       need=st.tuples(st.integers(0, 4), st.integers(0, 4)), cap=st.one_of(st.none(), st.integers(0, 4)),
       specialty=st.sampled_from([None, "法律", "医学"]), seed=st.binary(min_size=32, max_size=32))
def test_r11_1_the_fast_strict_draw_equals_the_reference(data, n, alternates, need, cap, specialty, seed):
    """The service's columnar path gives exactly the order the verifier's reference path gives."""
    rows = people(n, districts=("环翠区", "文登区", "荣成市"), served=lambda i: data.draw(st.integers(0, 3)),
                  seed=data.draw(st.integers(0, 10**6)))
    excluded = {r["id"]: ["tried"] for r in rows if data.draw(st.booleans()) and data.draw(st.booleans())}
    snapshot, buckets = alg.make_pool(rows, chain_head=PREV, year=2026)
    p = params(need={"local": need[0], "cross": need[1]}, alternates=alternates, yearly_cap=cap,
               specialty=specialty, excluded=excluded)
    columns = {digest: alg.Columns.of_rows(bucket) for digest, bucket in buckets.items()}
    reference = alg.compute_order(snapshot, buckets, p, seed.hex())
    assert alg.compute_order(snapshot, buckets, p, seed.hex(), columns=columns) == reference
    for g, limit in (("local", need[0]), ("cross", need[1])):
        assert len(reference[g]) <= (limit + alternates if limit else 0)


def test_r11_1_verifier_refuses_ids_that_are_not_canonical_uuids():
    rows = people(5)
    rows[0]["id"] = rows[0]["id"].replace("-", "")  # the same 16 bytes, another text
    snapshot, buckets = alg.make_pool(rows, chain_head=PREV, year=2026)
    ok, detail = alg.check_buckets(snapshot, buckets)
    assert not ok and "UUID" in detail


def test_r11_1_verify_receipt_detects_each_kind_of_tampering():
    r = receipt_for(people(20))
    assert alg.verify_receipt(r)["ok"]
    cases = {
        "order": lambda x: x["order"]["local"].reverse(),
        "snapshot_hash": lambda x: x["snapshot"].__setitem__("year", 1999),
        "buckets": lambda x: next(iter(x["buckets"].values()))[0].__setitem__("served", 9),
        "bureau_commitment": lambda x: x["nonces"].__setitem__("bureau", "cd" * 32),
        "receipt_hash": lambda x: x.__setitem__("drawn_at", "2020-01-01"),
        "params_hash": lambda x: x["params"].__setitem__("district", "文登区"),
    }
    import copy

    for check, tamper in cases.items():
        bad = copy.deepcopy(r)
        tamper(bad)
        result = alg.verify_receipt(bad)
        assert not result["ok"] and not result["checks"][check]["ok"], check


def test_r12_1_contact_log_chain_detects_edits():
    r = receipt_for(people(10))
    prev, log = r["receipt_hash"], []
    for i, outcome in enumerate(["declined", "confirmed"]):
        entry = {"seq": i + 1, "supervisor_id": r["order"]["local"][i], "group": "local", "position": i + 1,
                 "outcome": outcome, "recorded_by": "supervisor", "attempts": [], "reason_sha256": None,
                 "at": "2026-01-05T01:00:00+00:00", "prev_hash": prev}
        entry["hash"] = alg.contact_entry_hash(entry)
        log.append(entry)
        prev = entry["hash"]
    assert alg.verify_receipt({**r, "contact_log": log})["ok"]
    log[0]["outcome"] = "confirmed"
    result = alg.verify_receipt({**r, "contact_log": log})
    assert not result["checks"]["contact_log_chain"]["ok"]


def test_r12_1_a_rehashed_log_naming_someone_out_of_order_is_refused():
    r = receipt_for(people(10))
    entry = {"seq": 1, "supervisor_id": r["order"]["local"][2], "group": "local", "position": 1,
             "outcome": "confirmed", "recorded_by": "supervisor", "attempts": [], "reason_sha256": None,
             "at": "2026-01-05T01:00:00+00:00", "prev_hash": r["receipt_hash"]}
    entry["hash"] = alg.contact_entry_hash(entry)
    result = alg.verify_receipt({**r, "contact_log": [entry]})
    assert result["checks"]["contact_log_chain"]["ok"] and not result["checks"]["contacts_follow_order"]["ok"]
    assert not result["ok"]


def test_r11_1_protocol_checks_in_the_receipt():
    rows = people(20)
    good = receipt_for(rows)
    assert alg.verify_receipt(good)["ok"]
    # the procuratorate nonce must match its commitment
    forged = {**good, "nonces": {**good["nonces"], "procuratorate": "ee" * 32}}
    assert not alg.verify_receipt(forged)["checks"]["procuratorate_commitment"]["ok"]
    # without it, the receipt must say why
    silent = receipt_for(rows, proc=None)
    assert alg.verify_receipt(silent)["ok"] and silent["procuratorate_nonce_reason"] == "not revealed"
    assert not alg.verify_receipt({**silent, "procuratorate_nonce_reason": None})["ok"]
    # a beacon's value is in the seed
    lottery = {"source": "福彩双色球", "round": "2026-139", "value": "03 07 12 19 25 31 09"}
    with_beacon = receipt_for(rows, beacon=lottery)
    assert alg.verify_receipt(with_beacon)["ok"] and with_beacon["seed"] != good["seed"]
    changed = {**with_beacon, "beacon": {**lottery, "value": "03 07 12 19 25 31 10"}}
    assert not alg.verify_receipt(changed)["checks"]["seed"]["ok"]


def test_r11_1_build_receipt_refuses_entropy_that_does_not_match_what_was_committed():
    import pytest

    snapshot, buckets = alg.make_pool(people(5), chain_head=PREV, year=2026)
    common = dict(draw_id="d", request_id="r", round_no=1, snapshot=snapshot, buckets=buckets, params=params(),
                  accepted_at="2026-01-04T00:00:00+00:00", prev_receipt_hash=PREV, drawn_at="2026-01-05T00:00:00+00:00",
                  procuratorate_nonce_reason=None, beacon=None)
    with pytest.raises(ValueError):
        alg.build_receipt(**common, commitments={"bureau": alg.commitment(PROC), "procuratorate": None},
                          bureau_nonce=NONCE, procuratorate_nonce=None)
    with pytest.raises(ValueError):
        alg.build_receipt(**common, bureau_nonce=NONCE, procuratorate_nonce=PROC,
                          commitments={"bureau": alg.commitment(NONCE), "procuratorate": alg.commitment(NONCE)})
    with pytest.raises(ValueError):  # a named beacon without its value
        alg.build_receipt(**{**common, "beacon": {"source": "s", "round": "r"}}, bureau_nonce=NONCE,
                          commitments={"bureau": alg.commitment(NONCE), "procuratorate": alg.commitment(PROC)},
                          procuratorate_nonce=PROC)

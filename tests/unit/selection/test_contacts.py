"""Contacting the drawn in draw order, with evidence (DRAW.md "Contact"; R12.1, R14.1, R14.2).

Pure rules of services/selection/draw/contacts.py: the evidence a recorded outcome must carry, and
the stand-alone verifier's check of a whole contact log against the draw's order.
"""

import ast
import copy
import hashlib
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.selection.draw import contacts as c

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
RULES = c.DEFAULT_RULES


def sid(group: str, n: int) -> str:
    return str(uuid.UUID(int=(1 if group == "local" else 2) << 64 | n))


def calls(at: datetime, *minutes_before: float, channel: str = "phone") -> list[dict]:
    """Attempts `minutes_before` the moment `at`."""
    return [{"at": (at - timedelta(minutes=m)).isoformat(), "channel": channel} for m in minutes_before]


def _hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


class Log:
    """A contact log as `append_contact` writes it (seq from 1, hash-chained from the receipt hash)."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.clock = T0

    def add(self, supervisor_id: str, group: str, position: int, outcome: str, recorded_by: str,
            attempts: list[dict] | None = None, *, reason: str | None = None) -> dict:
        self.clock += timedelta(hours=1)
        entry = {
            "seq": len(self.entries) + 1, "at": self.clock.isoformat(),
            "prev_hash": self.entries[-1]["hash"] if self.entries else "ab" * 32,
            "supervisor_id": supervisor_id, "group": group, "position": position, "outcome": outcome,
            "recorded_by": recorded_by, "attempts": [] if attempts is None else attempts,
            "reason_sha256": hashlib.sha256(reason.encode()).hexdigest() if reason else None,
        }
        entry["hash"] = _hash(entry)
        self.entries.append(entry)
        return entry

    def bureau(self, supervisor_id, group, position, outcome, *minutes_before, channel="phone", **kw) -> dict:
        """An outcome a clerk records, with attempts `minutes_before` the entry's own time."""
        at = self.clock + timedelta(hours=1)
        return self.add(supervisor_id, group, position, outcome, "bureau",
                        calls(at, *(minutes_before or (5,)), channel=channel), **kw)


LOCAL = [sid("local", i) for i in range(1, 5)]
CROSS = [sid("cross", i) for i in range(1, 4)]
ORDER = {"local": LOCAL, "cross": CROSS}  # need 2 + 2 alternates, need 1 + 2 alternates
PARAMS = {"need": {"local": 2, "cross": 1}, "position_base": {"local": 0, "cross": 0}, "contact_rules": RULES}


def good_log() -> Log:
    log = Log()
    log.add(LOCAL[0], "local", 1, "declined", "supervisor", reason="出差")  # lets LOCAL[2] in
    log.add(LOCAL[2], "local", 3, "recused", "system")  # recused after the draw: skipped when reached
    log.bureau(LOCAL[1], "local", 2, "confirmed", 15)
    log.bureau(CROSS[0], "cross", 1, "unreachable", 40, 20, channel="phone")  # lets CROSS[1] in
    log.add(CROSS[1], "cross", 2, "dismissed", "system")  # R9.1 before being reached: skipped
    log.add(CROSS[2], "cross", 3, "confirmed", "supervisor")
    log.add(LOCAL[3], "local", 4, "confirmed", "supervisor")
    log.bureau(LOCAL[1], "local", 2, "declined", 3, channel="sms", reason="临时生病")  # R14.2, confirmed first
    return log


# --- the whole log against the order (the stand-alone verifier) -------------------------------------

def test_r12_1_good_log_with_declines_confirmations_and_system_skips_follows_the_order():
    ok, detail = c.verify_contacts(good_log().entries, ORDER, PARAMS)
    assert (ok, detail) == (True, "8 entries follow the order")


def test_r14_2_a_confirmed_person_may_still_decline_recuse_or_be_dismissed_or_cancelled():
    for outcome, recorded_by in (("declined", "supervisor"), ("recused", "bureau"), ("dismissed", "system"),
                                 ("cancelled", "system")):
        log = Log()
        log.add(LOCAL[0], "local", 1, "confirmed", "supervisor")
        log.add(LOCAL[0], "local", 1, outcome, recorded_by)
        assert c.verify_contacts(log.entries, ORDER, PARAMS)[0], outcome


def test_r14_1_a_second_round_continues_the_positions_from_position_base():
    order = {"local": [sid("local", 11), sid("local", 12), sid("local", 13)], "cross": []}
    params = {"need": {"local": 1, "cross": 0}, "position_base": {"local": 4, "cross": 3}}
    log = Log()
    log.add(order["local"][0], "local", 5, "declined", "supervisor")
    log.bureau(order["local"][1], "local", 6, "confirmed", 30)
    assert c.verify_contacts(log.entries, order, params) == (True, "2 entries follow the order")

    without_base = c.verify_contacts(log.entries, order, {"need": params["need"]})
    assert without_base[0] is False and "seq 1" in without_base[1] and "outside" in without_base[1]
    restarted = Log()
    restarted.add(order["local"][0], "local", 1, "declined", "supervisor")
    assert c.verify_contacts(restarted.entries, order, params)[0] is False
    # nobody of a group this round did not draw for
    cross = Log()
    cross.add(order["local"][0], "cross", 4, "declined", "supervisor")
    assert c.verify_contacts(cross.entries, order, params)[0] is False


def test_r12_1_an_older_receipt_without_position_base_or_rules_uses_zero_and_the_defaults():
    ok, _ = c.verify_contacts(good_log().entries, ORDER, {"need": PARAMS["need"]})
    assert ok
    one_call = Log()
    one_call.bureau(LOCAL[0], "local", 1, "unreachable", 5)
    ok, detail = c.verify_contacts(one_call.entries, ORDER, {"need": PARAMS["need"]})
    assert not ok and "R12.1" in detail


def test_r12_1_an_entry_naming_someone_out_of_order_is_refused():
    log = good_log()
    log.entries[2]["supervisor_id"] = LOCAL[3]  # position 2 is LOCAL[1]
    ok, detail = c.verify_contacts(log.entries, ORDER, PARAMS)
    assert not ok and detail.startswith("entry seq 3:") and "out of order" in detail

    beyond = Log()
    beyond.add(sid("local", 99), "local", 5, "declined", "supervisor")  # not in the order at all
    ok, detail = c.verify_contacts(beyond.entries, ORDER, PARAMS)
    assert not ok and "seq 1" in detail


def test_r12_1_a_person_reached_before_the_window_opened_is_refused():
    log = Log()
    log.add(LOCAL[0], "local", 1, "declined", "supervisor")  # window: 2 + 1 = 3
    log.add(LOCAL[3], "local", 4, "confirmed", "supervisor")  # the 4th, while the 3rd has not left
    ok, detail = c.verify_contacts(log.entries, ORDER, PARAMS)
    assert not ok and detail.startswith("entry seq 2:") and "window" in detail

    # `cancelled` and `confirmed` free nobody
    log = Log()
    log.add(LOCAL[0], "local", 1, "confirmed", "supervisor")
    log.add(LOCAL[1], "local", 2, "cancelled", "system")
    log.add(LOCAL[2], "local", 3, "confirmed", "supervisor")
    assert c.verify_contacts(log.entries, ORDER, PARAMS)[0] is False
    # a decline in the other group frees nobody here
    log = Log()
    log.add(CROSS[0], "cross", 1, "declined", "supervisor")
    log.add(LOCAL[2], "local", 3, "confirmed", "supervisor")
    assert c.verify_contacts(log.entries, ORDER, PARAMS)[0] is False


@pytest.mark.parametrize(("first", "then"), [
    ("declined", "confirmed"), ("unreachable", "declined"), ("recused", "confirmed"), ("dismissed", "recused"),
    ("ineligible", "confirmed"), ("cancelled", "confirmed"), ("confirmed", "confirmed"),
    ("confirmed", "unreachable"), ("confirmed", "ineligible"),
])
def test_r14_2_no_outcome_after_a_terminal_one_and_only_leaving_after_a_confirmation(first, then):
    recorder = {"confirmed": "supervisor", "declined": "supervisor", "recused": "supervisor"}
    log = Log()
    for outcome in (first, then):
        if outcome == "unreachable":
            log.bureau(LOCAL[0], "local", 1, outcome, 30, 10)
        else:
            log.add(LOCAL[0], "local", 1, outcome, recorder.get(outcome, "system"))
    ok, detail = c.verify_contacts(log.entries, ORDER, PARAMS)
    assert not ok and detail.startswith("entry seq 2:") and "cannot follow" in detail


def test_r12_1_a_clerks_outcome_without_attempts_is_refused_by_the_verifier():
    log = Log()
    log.add(LOCAL[0], "local", 1, "declined", "bureau")
    ok, detail = c.verify_contacts(log.entries, ORDER, PARAMS)
    assert not ok and detail.startswith("entry seq 1: R12.1") and "至少一次联系尝试" in detail


def test_r12_1_an_attempt_after_the_entry_was_recorded_is_refused_by_the_verifier():
    log = Log()
    at = log.clock + timedelta(hours=1)
    log.add(LOCAL[0], "local", 1, "confirmed", "bureau", [{"at": (at + timedelta(seconds=1)).isoformat(),
                                                           "channel": "phone"}])
    ok, detail = c.verify_contacts(log.entries, ORDER, PARAMS)
    assert not ok and "晚于记录时间" in detail


def test_r12_1_the_rules_of_the_receipt_are_applied():
    strict = {**PARAMS, "contact_rules": {"channels": ["phone"], "unreachable_min_attempts": 3,
                                          "unreachable_min_gap_seconds": 3600}}
    log = Log()
    log.bureau(LOCAL[0], "local", 1, "unreachable", 50, 20)
    assert c.verify_contacts(log.entries, ORDER, PARAMS)[0] is True
    ok, detail = c.verify_contacts(log.entries, ORDER, strict)
    assert not ok and "至少三次" in detail and "1小时" in detail
    sms = Log()
    sms.bureau(LOCAL[0], "local", 1, "declined", 5, channel="sms")
    assert c.verify_contacts(sms.entries, ORDER, strict)[0] is False
    # rules below DRAW.md's floor ("at least two attempts apart in time") are refused
    for weak in ({**RULES, "unreachable_min_attempts": 1}, {**RULES, "unreachable_min_gap_seconds": 0},
                 {**RULES, "channels": []}, {**RULES, "unreachable_min_attempts": True}):
        ok, detail = c.verify_contacts(log.entries, ORDER, {**PARAMS, "contact_rules": weak})
        assert not ok and detail.startswith("params:"), weak


MALFORMED_ENTRIES = [
    None, "entry", [], {}, {"seq": 1},
    {"seq": True, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": "1",
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": True,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "north", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": ["x"], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": ["declined"], "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "maybe", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "clerk-7"},
    {"seq": 1, "supervisor_id": LOCAL[0], "group": "local", "position": 1, "outcome": "declined",
     "recorded_by": "supervisor"},
    {"seq": 1, "at": "yesterday", "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": "2026-03-02T09:00:00", "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "bureau", "attempts": "phone"},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "bureau", "attempts": [["phone"]]},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "bureau", "attempts": [{"at": 5, "channel": "phone"}]},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "bureau", "attempts": [{"at": T0.isoformat(), "channel": {}}]},
    {"seq": 1, "at": T0.isoformat(), "supervisor_id": LOCAL[0], "group": "local", "position": 1,
     "outcome": "declined", "recorded_by": "supervisor", "reason_sha256": 5},
]


@pytest.mark.parametrize("entry", MALFORMED_ENTRIES)
def test_r12_1_a_malformed_entry_fails_the_check_and_never_raises(entry):
    ok, detail = c.verify_contacts([entry], ORDER, PARAMS)
    assert ok is False and isinstance(detail, str) and detail


@pytest.mark.parametrize(("log", "order", "params"), [
    (None, ORDER, PARAMS), ("log", ORDER, PARAMS), ({"seq": 1}, ORDER, PARAMS),
    ([], None, PARAMS), ([], {"local": "abc"}, PARAMS), ([], {"north": []}, PARAMS),
    ([], {"local": [LOCAL[0], LOCAL[0]], "cross": []}, PARAMS),
    ([], {"local": [LOCAL[0]], "cross": [LOCAL[0]]}, PARAMS),
    ([], {"local": [1, 2]}, PARAMS), ([], ORDER, None), ([], ORDER, []), ([], ORDER, {}),
    ([], ORDER, {"need": {"local": -1}}), ([], ORDER, {"need": {"local": "2"}}), ([], ORDER, {"need": [2, 1]}),
    ([], ORDER, {"need": {"local": 2}, "position_base": "x"}),
    ([], ORDER, {"need": {"local": 2}, "position_base": {"local": 1.5}}),
    ([], ORDER, {"need": {"local": 2}, "contact_rules": "x"}),
])
def test_r12_1_malformed_logs_orders_and_params_fail_the_check_and_never_raise(log, order, params):
    ok, detail = c.verify_contacts(log, order, params)
    assert ok is False and isinstance(detail, str) and detail


def test_r12_1_entries_are_numbered_from_one_in_log_order():
    log = good_log().entries
    log[3]["seq"] = 7
    ok, detail = c.verify_contacts(log, ORDER, PARAMS)
    assert not ok and detail.startswith("entry seq 7:")
    assert c.verify_contacts([], ORDER, PARAMS) == (True, "0 entries follow the order")


# --- the evidence one recorded outcome must carry (the service and the verifier) --------------------

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def evidence(outcome, recorded_by, attempts, rules=RULES, **kw):
    return c.evidence_problem(outcome, recorded_by, attempts, rules, recorded_at=kw.pop("recorded_at", NOW), **kw)


def test_r12_1_a_clerks_outcome_without_attempts_is_refused():
    for outcome in ("confirmed", "declined", "unreachable"):
        for attempts in ([], None):
            code, message = evidence(outcome, "bureau", attempts)
            assert code == "R12.1" and "联系尝试" in message


def test_r12_1_unreachable_with_one_attempt_is_refused():
    assert evidence("unreachable", "bureau", calls(NOW, 30)) == (
        "R12.1", "记录为无法联系须至少两次联系尝试，且相隔不少于10分钟。")


def test_r12_1_unreachable_with_two_attempts_one_minute_apart_is_refused():
    assert evidence("unreachable", "bureau", calls(NOW, 30, 29))[0] == "R12.1"
    assert evidence("unreachable", "bureau", calls(NOW, 30, 20, channel="sms")) is None  # exactly 10 minutes
    mixed = calls(NOW, 30) + calls(NOW, 15, channel="sms") + calls(NOW, 29, channel="in_person")
    assert evidence("unreachable", "bureau", mixed) is None  # unsorted is fine: earliest..latest counts


def test_r12_1_an_attempt_in_the_future_is_refused():
    code, message = evidence("confirmed", "bureau", [{"at": (NOW + timedelta(microseconds=1)).isoformat(),
                                                      "channel": "phone"}])
    assert code == "R12.1" and "晚于记录时间" in message
    assert evidence("confirmed", "bureau", [{"at": NOW.isoformat(), "channel": "phone"}]) is None


def test_r12_1_an_attempt_before_the_person_was_reached_is_refused():
    opened = NOW - timedelta(hours=2)
    code, message = evidence("declined", "bureau", calls(NOW, 121), window_opened_at=opened)
    assert code == "R12.1" and "轮到" in message
    assert evidence("declined", "bureau", calls(NOW, 120), window_opened_at=opened) is None


def test_r12_1_an_unknown_channel_is_refused():
    code, message = evidence("declined", "bureau", calls(NOW, 5, channel="wechat"))
    assert code == "R12.1" and "电话" in message
    only_phone = {**RULES, "channels": ["phone"]}
    assert evidence("declined", "bureau", calls(NOW, 5, channel="sms"), only_phone)[0] == "R12.1"


def test_r12_1_attempts_have_exactly_an_aware_time_and_a_channel():
    at = (NOW - timedelta(minutes=5)).isoformat()
    for attempt in ({"at": at}, {"channel": "phone"}, {"at": at, "channel": "phone", "note": "x"},
                    {"at": "2026-03-02T09:00:00", "channel": "phone"}, {"at": "soon", "channel": "phone"},
                    {"at": None, "channel": "phone"}, "phone"):
        assert evidence("declined", "bureau", [attempt])[0] == "R12.1", attempt
    assert evidence("declined", "bureau", "phone")[0] == "R12.1"
    assert evidence("declined", "bureau", [{"at": "2026-03-02T17:55:00+08:00", "channel": "phone"}]) is None


def test_r12_1_repeated_attempts_are_refused():
    code, message = evidence("unreachable", "bureau", calls(NOW, 30, 30))
    assert code == "R12.1" and "重复" in message
    same_instant = [{"at": "2026-03-02T09:30:00+00:00", "channel": "phone"},
                    {"at": "2026-03-02T17:30:00+08:00", "channel": "phone"}]
    assert evidence("unreachable", "bureau", same_instant)[0] == "R12.1"


def test_r12_1_a_supervisors_own_decline_without_attempts_is_accepted():
    for outcome in ("confirmed", "declined", "recused"):
        assert evidence(outcome, "supervisor", []) is None
        assert evidence(outcome, "supervisor", None) is None


def test_r12_1_the_supervisor_and_the_system_carry_no_attempts():
    assert evidence("declined", "supervisor", calls(NOW, 5))[0] == "R12.1"
    assert evidence("dismissed", "system", calls(NOW, 5))[0] == "R12.1"
    for outcome in ("recused", "dismissed", "ineligible", "cancelled"):
        assert evidence(outcome, "system", []) is None


def test_r12_1_a_bureau_recusal_needs_no_attempts_but_checks_those_it_has():
    assert evidence("recused", "bureau", []) is None
    assert evidence("recused", "bureau", calls(NOW, 5)) is None
    assert evidence("recused", "bureau", calls(NOW, 5, channel="fax"))[0] == "R12.1"


def test_r12_1_nobody_but_the_system_skips_and_nobody_but_a_clerk_records_unreachable():
    """A clerk recording `ineligible` or `dismissed` would be a skip without a trace: refused."""
    for outcome in ("dismissed", "ineligible", "cancelled"):
        for who in ("bureau", "supervisor"):
            code, message = evidence(outcome, who, calls(NOW, 5) if who == "bureau" else [])
            assert code == "R12.1" and "系统" in message, (outcome, who)
    assert evidence("unreachable", "supervisor", [])[0] == "R12.1"
    for outcome in ("confirmed", "declined", "unreachable"):
        assert evidence(outcome, "system", [])[0] == "R12.1"
    assert evidence("confirmed", "clerk-7", [])[0] == "R12.1"
    assert evidence("postponed", "bureau", calls(NOW, 5))[0] == "R12.1"


def test_r12_1_evidence_refuses_unusable_rules_and_a_naive_server_clock():
    assert evidence("declined", "supervisor", [], {"channels": ["phone"]})[0] == "R12.1"
    with pytest.raises(ValueError):
        c.evidence_problem("declined", "supervisor", [], RULES, recorded_at=datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError):
        evidence("declined", "supervisor", [], window_opened_at=datetime(2026, 3, 2, 9))


def test_r12_1_transitions_and_constants_are_as_draw_md_says():
    assert c.allowed_after(None) == frozenset(c.OUTCOMES)
    assert c.allowed_after("confirmed") == {"declined", "recused", "dismissed", "cancelled"}
    assert all(c.allowed_after(o) == frozenset() for o in c.OUTCOMES if o != "confirmed")
    assert c.FREEING == {"declined", "unreachable", "recused", "dismissed", "ineligible"}
    assert set(c.CHANNEL_LABELS) == set(c.CHANNELS) == set(c.DEFAULT_RULES["channels"])
    assert c.rules_problem(c.DEFAULT_RULES) is None


# --- property: a correctly simulated window always verifies; a swap never does ----------------------

@st.composite
def simulated(draw):
    """(log, order, params) of a request's window run as the service runs it, with random outcomes."""
    need = {g: draw(st.integers(0, 3)) for g in c.GROUPS}
    alternates = draw(st.integers(0, 4))
    base = {g: draw(st.integers(0, 6)) for g in c.GROUPS}
    order = {g: [sid(g, 1000 * base[g] + i) for i in range(need[g] + alternates if need[g] else 0)]
             for g in c.GROUPS}
    params = {"need": need}
    if any(base.values()) or draw(st.booleans()):
        params["position_base"] = base
    if draw(st.booleans()):
        params["contact_rules"] = RULES
    log = Log()
    placed = dict(need)  # how many of each group have entered the window
    active = {(g, i): "pending" for g in c.GROUPS for i in range(need[g])}

    def record(g: str, i: int, outcome: str, recorded_by: str) -> None:
        at = log.clock + timedelta(hours=1)
        if recorded_by != "bureau":
            attempts = []
        elif outcome == "unreachable":
            attempts = calls(at, draw(st.integers(11, 59)), draw(st.integers(0, 1)), channel="phone")
        elif outcome == "recused" and draw(st.booleans()):
            attempts = []
        else:
            attempts = calls(at, draw(st.integers(0, 59)), channel=draw(st.sampled_from(c.CHANNELS)))
        log.add(order[g][i], g, base[g] + i + 1, outcome, recorded_by, attempts)

    def admit(g: str) -> None:
        """One more in, in order; people skipped when reached are logged by the system and free their place."""
        while placed[g] < len(order[g]):
            i = placed[g]
            placed[g] += 1
            if draw(st.integers(0, 4)) == 0:
                record(g, i, draw(st.sampled_from(("recused", "dismissed", "ineligible"))), "system")
                continue
            active[(g, i)] = "pending"
            return

    for _ in range(draw(st.integers(0, 30))):
        if not active:
            break
        g, i = draw(st.sampled_from(sorted(active)))
        outcome = draw(st.sampled_from(sorted(c.allowed_after(None if active[(g, i)] == "pending"
                                                              else active[(g, i)]))))
        recorded_by = draw(st.sampled_from(sorted(c.RECORDED_BY[outcome])))
        record(g, i, outcome, recorded_by)
        if outcome == "confirmed":
            active[(g, i)] = "confirmed"
            continue
        del active[(g, i)]
        if outcome in c.FREEING:
            admit(g)
    return log.entries, order, params


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simulated())
def test_r12_1_r14_2_any_correctly_simulated_window_verifies(case):
    log, order, params = case
    assert c.verify_contacts(log, order, params) == (True, f"{len(log)} entries follow the order")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simulated(), st.data())
def test_r12_1_swapping_two_people_in_the_log_is_detected(case, data):
    log, order, params = case
    pairs = [(i, j) for i in range(len(log)) for j in range(i + 1, len(log))
             if log[i]["supervisor_id"] != log[j]["supervisor_id"]]
    assume(pairs)
    i, j = data.draw(st.sampled_from(pairs))
    swapped = copy.deepcopy(log)
    swapped[i]["supervisor_id"], swapped[j]["supervisor_id"] = log[j]["supervisor_id"], log[i]["supervisor_id"]
    ok, detail = c.verify_contacts(swapped, order, params)
    assert not ok and detail.startswith(f"entry seq {i + 1}:")


# --- it runs in the stand-alone verifier --------------------------------------------------------------

def test_r12_1_contacts_imports_only_the_standard_library_and_runs_without_site_packages():
    path = ROOT / "services" / "selection" / "draw" / "contacts.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names or name == "__future__", name
    script = ("import json, sys; from services.selection.draw import contacts as c; "
              "sys.stdout.write(json.dumps(c.verify_contacts(json.loads(sys.stdin.read()), "
              f"{ORDER!r}, {PARAMS!r})))")
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=ROOT, input=json.dumps(good_log().entries),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, "8 entries follow the order"]

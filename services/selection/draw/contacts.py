"""Contacting the drawn in draw order (DRAW.md "Contact", R12.1, R14.1, R14.2): pure rules, standard library only.

Used twice, with the same code: by the service when an outcome is recorded (`evidence_problem`,
`allowed_after`), and by the stand-alone verifier, which checks a draw's whole contact log against
its order (`verify_contacts`). It must run under `python -S`: it imports nothing but the standard
library, and nothing of the draw package (`algorithm.py` imports this module, not the reverse).

Draw algorithm v4, what a receipt says about contacts:
- params["need"] {group: seats this round must fill}; params["position_base"] {group: candidates of
  that group placed by earlier rounds of the request}: positions are 1-based and continue across
  rounds, so this draw's k-th person of group g has position position_base[g] + k (absent: 0);
  params["contact_rules"] {"channels", "unreachable_min_attempts", "unreachable_min_gap_seconds"}
  (absent, as in an older receipt: DEFAULT_RULES).
- order {group: ids in draw order} (need + alternates per group).
- contact log: one entry per outcome, hash-chained elsewhere (algorithm.verify_contact_log):
  {seq, at, prev_hash, supervisor_id, group, position, outcome, recorded_by, attempts, reason_sha256, hash}.

The window (R12.1, R14.2): the first need[g] of a group are reached at once; every FREEING outcome
lets exactly one more in, in order (skipped people, e.g. recused after the draw, are logged by the
system and free their place too). So an entry naming the k-th of a group is in order only when
k <= need[g] + the FREEING entries of g before it.

Who may record what, and with which evidence (DRAW.md: "an outcome recorded by someone other than
the supervisor carries evidence"; the lever it closes is a clerk skipping people):
  outcome       supervisor  bureau (a clerk, on the person's behalf)          system
  confirmed     yes         >= 1 attempt                                       no
  declined      yes         >= 1 attempt                                       no
  unreachable   no          >= min attempts, earliest..latest >= min gap       no
  recused       yes         attempts optional (decided on a ground)            yes (skipped when reached)
  dismissed     no          no                                                 yes (R9.1)
  ineligible    no          no                                                 yes (no longer drawable)
  cancelled     no          no                                                 yes (request withdrawn)
The supervisor and the system carry no attempts. An attempt is exactly {"at": aware ISO-8601 text,
"channel": one of rules["channels"]}, not after the outcome was recorded (server clock, no skew),
not before the person entered the window (when known), and never repeated (same instant + channel).

Transitions per person: the first entry may be any outcome; after `confirmed` only declined,
recused, dismissed or cancelled (R14.2: a confirmed person who cannot attend); after any other
outcome nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

CHANNELS = ("phone", "sms", "in_person", "email")
CHANNEL_LABELS = {"phone": "电话", "sms": "短信", "in_person": "当面", "email": "电子邮件"}
OUTCOMES = ("confirmed", "declined", "unreachable", "recused", "dismissed", "ineligible", "cancelled")
FREEING = frozenset({"declined", "unreachable", "recused", "dismissed", "ineligible"})
RECORDERS = ("supervisor", "bureau", "system")
GROUPS = ("local", "cross")
DEFAULT_RULES = {"channels": list(CHANNELS), "unreachable_min_attempts": 2, "unreachable_min_gap_seconds": 600}
# DRAW.md's floor: "unreachable needs at least two attempts apart in time"; rules may ask more, never less
MIN_UNREACHABLE_ATTEMPTS = 2
MIN_UNREACHABLE_GAP_SECONDS = 1

CODE = "R12.1"  # every evidence failure: the rule of contacting in order, with a record
# who may record each outcome (see the table above)
RECORDED_BY: dict[str, frozenset[str]] = {
    "confirmed": frozenset({"supervisor", "bureau"}),
    "declined": frozenset({"supervisor", "bureau"}),
    "unreachable": frozenset({"bureau"}),
    "recused": frozenset({"supervisor", "bureau", "system"}),
    "dismissed": frozenset({"system"}),
    "ineligible": frozenset({"system"}),
    "cancelled": frozenset({"system"}),
}
# outcomes a clerk may record only with at least one attempt
NEEDS_ATTEMPTS = frozenset({"confirmed", "declined", "unreachable"})
AFTER_CONFIRMED = frozenset({"declined", "recused", "dismissed", "cancelled"})

OUTCOME_LABELS = {"confirmed": "确认参加", "declined": "不能参加", "unreachable": "无法联系", "recused": "回避",
                  "dismissed": "已被免除资格", "ineligible": "不再符合抽选条件", "cancelled": "申请已撤回"}
RECORDER_LABELS = {"supervisor": "人民监督员本人", "bureau": "工作人员", "system": "系统"}
_CN_DIGITS = {1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十"}


def allowed_after(previous: str | None) -> frozenset[str]:
    """The outcomes that may follow a person's previous outcome (None: nothing recorded yet)."""
    if previous is None:
        return frozenset(OUTCOMES)
    if previous == "confirmed":
        return AFTER_CONFIRMED
    return frozenset()


def window_size(need: int, freed: int) -> int:
    """How many of a group's order may have been reached: need + FREEING outcomes so far (R12.1, R14.2)."""
    return need + freed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO-8601 text, or None when the text is no such thing."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed


def _count(n: int) -> str:
    return _CN_DIGITS.get(n, str(n))


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}小时"
    if seconds % 60 == 0:
        return f"{seconds // 60}分钟"
    return f"{seconds}秒"


def rules_problem(rules: Any) -> str | None:
    """None if `rules` are usable contact rules (at or above DRAW.md's floor), else why not."""
    if not isinstance(rules, Mapping):
        return "contact rules are not an object"
    channels = rules.get("channels")
    if (not isinstance(channels, list | tuple) or not channels
            or not all(isinstance(c, str) and c for c in channels)):
        return "contact rules name no channels"
    attempts, gap = rules.get("unreachable_min_attempts"), rules.get("unreachable_min_gap_seconds")
    if not _is_int(attempts) or attempts < MIN_UNREACHABLE_ATTEMPTS:
        return f"unreachable_min_attempts must be an integer >= {MIN_UNREACHABLE_ATTEMPTS}"
    if not _is_int(gap) or gap < MIN_UNREACHABLE_GAP_SECONDS:
        return f"unreachable_min_gap_seconds must be an integer >= {MIN_UNREACHABLE_GAP_SECONDS}"
    return None


def _require_aware(value: Any, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (the server clock)")


def evidence_problem(outcome: str, recorded_by: str, attempts: list[dict] | None, rules: dict, *,
                     recorded_at: datetime, window_opened_at: datetime | None = None) -> tuple[str, str] | None:
    """R12.1/R14.2: None if an outcome recorded by `recorded_by` carries the evidence DRAW.md asks.

    Otherwise (code, Chinese message): the code is "R12.1" for every evidence failure.

    `recorded_at` is the server's clock when the outcome is recorded (the entry's `at` in the
    verifier); `window_opened_at`, when known, is when the person entered the contact window: nobody
    can have been called for this request before. Both must be aware datetimes (a naive one is a bug
    of the caller: ValueError); everything else may be anything, and gives a problem, never an error.
    """
    _require_aware(recorded_at, "recorded_at")
    if window_opened_at is not None:
        _require_aware(window_opened_at, "window_opened_at")
    if outcome not in RECORDED_BY:
        return CODE, f"未知的联络结果：{outcome!r}。"
    if recorded_by not in RECORDERS:
        return CODE, f"未知的记录人类型：{recorded_by!r}。"
    label, who = OUTCOME_LABELS[outcome], RECORDER_LABELS[recorded_by]
    if recorded_by not in RECORDED_BY[outcome]:
        allowed = "、".join(RECORDER_LABELS[r] for r in RECORDERS if r in RECORDED_BY[outcome])
        return CODE, f"“{label}”只能由{allowed}记录，不能由{who}记录。"
    problem = rules_problem(rules)
    if problem is not None:
        return CODE, f"联络规则无效（{problem}），无法核对联系记录。"
    if attempts is None:
        attempts = []
    if not isinstance(attempts, list | tuple):
        return CODE, "联系尝试应为列表，每项包含时间（at）和方式（channel）。"
    if recorded_by != "bureau":
        if attempts:
            return CODE, f"由{who}记录的结果不附联系尝试；联系尝试只由工作人员代为记录时填写。"
        return None
    if outcome in NEEDS_ATTEMPTS and not attempts:
        return CODE, f"工作人员代为记录“{label}”，须附至少一次联系尝试（联系时间和方式）。"
    channels = list(rules["channels"])
    seen: set[tuple[datetime, str]] = set()
    times: list[datetime] = []
    for i, attempt in enumerate(attempts, start=1):
        if not isinstance(attempt, Mapping) or set(attempt) != {"at", "channel"}:
            return CODE, f"第{i}次联系尝试应恰好包含联系时间（at）和方式（channel）。"
        at = parse_time(attempt["at"])
        if at is None:
            return CODE, f"第{i}次联系尝试的时间应为带时区的ISO 8601时间。"
        channel = attempt["channel"]
        if not isinstance(channel, str) or channel not in channels:
            names = "、".join(CHANNEL_LABELS.get(c, c) for c in channels)
            return CODE, f"第{i}次联系尝试的方式{channel!r}不在允许的方式之内（{names}）。"
        if at > recorded_at:
            return CODE, f"第{i}次联系尝试的时间晚于记录时间，不能记录尚未发生的联系。"
        if window_opened_at is not None and at < window_opened_at:
            return CODE, f"第{i}次联系尝试的时间早于该人民监督员按抽选顺序轮到的时间。"
        if (at, channel) in seen:
            return CODE, f"第{i}次联系尝试与之前的一次重复（同一时间、同一方式）。"
        seen.add((at, channel))
        times.append(at)
    if outcome == "unreachable":
        need, gap = rules["unreachable_min_attempts"], rules["unreachable_min_gap_seconds"]
        if len(times) < need or (max(times) - min(times)).total_seconds() < gap:
            return CODE, f"记录为无法联系须至少{_count(need)}次联系尝试，且相隔不少于{_duration(gap)}。"
    return None


def _order_problem(order: Any) -> str | None:
    if not isinstance(order, Mapping):
        return "the order is not an object {group: [ids]}"
    unknown = sorted(str(g) for g in order if g not in GROUPS)
    if unknown:
        return f"the order names unknown groups {unknown}"
    seen: set[str] = set()
    for g in GROUPS:
        ids = order.get(g, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return f"order[{g!r}] is not a list of ids"
        if seen.intersection(ids) or len(set(ids)) != len(ids):
            return "the order names someone twice"
        seen.update(ids)
    return None


def _per_group(params: Mapping[str, Any], key: str, fallback: str | None = None) -> dict[str, int] | str:
    """{group: non-negative int} of params[key] (absent groups 0), or why it is unusable."""
    value = params.get(key)
    if value is None and fallback is not None:
        value = params.get(fallback)
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        return f"params[{key!r}] is not an object {{group: int}}"
    out = {}
    for g in GROUPS:
        n = value.get(g, 0)
        if not _is_int(n) or n < 0:
            return f"params[{key!r}][{g!r}] is not a non-negative integer"
        out[g] = n
    return out


def _entry_name(i: int, entry: Any) -> str:
    seq = entry.get("seq") if isinstance(entry, Mapping) else None
    return f"entry seq {seq}" if _is_int(seq) else f"entry {i + 1} (seq {seq!r})"


def _verify(log: Any, order: Any, params: Any) -> tuple[bool, str]:
    if not isinstance(params, Mapping):
        return False, "params are not an object"
    if "need" not in params and "seats" not in params:
        return False, "params carry no need per group"
    need = _per_group(params, "need", fallback="seats")
    if isinstance(need, str):
        return False, need
    base = _per_group(params, "position_base")
    if isinstance(base, str):
        return False, base
    rules = params.get("contact_rules")
    if rules is None:
        rules = DEFAULT_RULES
    problem = rules_problem(rules)
    if problem is not None:
        return False, f"params: {problem}"
    problem = _order_problem(order)
    if problem is not None:
        return False, problem
    if not isinstance(log, list):
        return False, "the contact log is not a list"
    freed = dict.fromkeys(GROUPS, 0)
    last: dict[str, str] = {}
    for i, entry in enumerate(log):
        name = _entry_name(i, entry)
        if not isinstance(entry, Mapping):
            return False, f"{name}: not an object"
        if entry.get("seq") != i + 1 or not _is_int(entry.get("seq")):
            return False, f"{name}: seq should be {i + 1} (entries are numbered from 1 in log order)"
        group, position, sid = entry.get("group"), entry.get("position"), entry.get("supervisor_id")
        if group not in GROUPS:
            return False, f"{name}: group {group!r} is neither 'local' nor 'cross'"
        if not _is_int(position):
            return False, f"{name}: position {position!r} is not an integer"
        ids = order.get(group, [])
        k = position - base[group]
        if not 1 <= k <= len(ids):
            return False, (f"{name}: position {position} is outside this draw's {group} order "
                           f"(positions {base[group] + 1}..{base[group] + len(ids)})")
        if ids[k - 1] != sid:
            return False, f"{name}: named out of order ({group} position {position} is not {sid!r})"
        outcome, recorded_by = entry.get("outcome"), entry.get("recorded_by")
        if outcome not in OUTCOMES:
            return False, f"{name}: unknown outcome {outcome!r}"
        if recorded_by not in RECORDERS:
            return False, f"{name}: unknown recorded_by {recorded_by!r}"
        window = window_size(need[group], freed[group])
        if k > window:
            return False, (f"{name}: {group} position {position} reached before the window opened to it "
                           f"(need {need[group]} + {freed[group]} freed = {window} reached so far)")
        previous = last.get(sid)
        if outcome not in allowed_after(previous):
            return False, f"{name}: {outcome!r} cannot follow {previous!r} for the same person"
        at = parse_time(entry.get("at"))
        if at is None:
            return False, f"{name}: at {entry.get('at')!r} is not an aware ISO-8601 time"
        reason = entry.get("reason_sha256")
        if reason is not None and not (isinstance(reason, str) and len(reason) == 64
                                       and all(c in "0123456789abcdef" for c in reason)):
            return False, f"{name}: reason_sha256 is neither null nor a SHA-256 hex digest"
        evidence = evidence_problem(outcome, recorded_by, entry.get("attempts"), rules, recorded_at=at)
        if evidence is not None:
            return False, f"{name}: {evidence[0]} {evidence[1]}"
        last[sid] = outcome
        if outcome in FREEING:
            freed[group] += 1
    return True, f"{len(log)} entries follow the order"


def verify_contacts(log: list[dict], order: dict[str, list[str]], params: dict) -> tuple[bool, str]:
    """The stand-alone verifier's check that a draw's contact log follows its order (R12.1, R14.2), with evidence.

    Entry by entry, in log order: the entry names the person at its position of this draw's order
    (position - position_base[group]); that person was inside the window (need + FREEING entries
    of the group before it); the person's outcomes follow the allowed transitions; the evidence
    is what `evidence_problem` asks, recorded at the entry's `at`. (True, "n entries follow the
    order") or (False, why, naming the first bad entry by its seq); never raises.
    """
    try:
        return _verify(log, order, params)
    except Exception as exc:  # malformed beyond what the checks foresee: a failed check, never a crash
        return False, f"malformed contact log: {type(exc).__name__}: {exc}"

"""The to-do counts of the signed-in home page, from every service's GET /deadlines (shared/deadlines.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# who sees to-do counts: the bureau's people (the services' GET /deadlines readers, supervisors excepted)
BUREAU_ROLES = ("bureau_admin", "district_bureau", "finance", "auditor")
STATES = ("overdue", "due", "upcoming")
# where a clerk works the items of a (service, kind): the console's page for them
WORK_PAGES = {
    ("selection", "consent_pending"): "/console/requests?status=awaiting_consent",
    ("selection", "beacon_value_due"): "/console/requests?status=accepted",
    ("selection", "reveal_due"): "/console/requests?status=accepted",
    ("selection", "contact_pending"): "/console/requests?status=drawn",
    ("selection", "redraw_needed"): "/console/requests?short_staffed=1",
    ("registry", "term_end"): "/console/roster?ending=3",
    ("registry", "initial_training_due"): "/console/training",
    ("registry", "term_training_due"): "/console/training",
    ("registry", "annual_training_due"): "/console/training",
    ("finance", "lines_to_check"): "/console/finance/lines?status=draft",
    ("finance", "lines_to_approve"): "/console/finance/lines?status=checked",
    ("finance", "table_due"): "/console/finance/disbursements",
    ("finance", "claim_to_check"): "/console/finance/travel-claims?status=draft",
    ("finance", "claim_to_approve"): "/console/finance/travel-claims?status=checked",
}


@dataclass(frozen=True)
class RuleCount:
    """How many items one rule (and kind) has due, per state."""

    service: str
    rule: str
    kind: str
    title: str
    overdue: int = 0
    due: int = 0
    upcoming: int = 0

    @property
    def work_page(self) -> str | None:
        return WORK_PAGES.get((self.service, self.kind))

    @property
    def total(self) -> int:
        return self.overdue + self.due + self.upcoming


def counts_per_rule(service: str, answer: Mapping[str, Any]) -> list[RuleCount]:
    """One row per (rule, kind) of a DeadlineList, counted by state, ordered by rule then kind."""
    counts: dict[tuple[str, str], dict[str, Any]] = {}
    items: Sequence[Mapping[str, Any]] = answer.get("items") or []
    for item in items:
        key = (str(item.get("rule", "")), str(item.get("kind", "")))
        row = counts.setdefault(key, {"title": str(item.get("title", "")), **dict.fromkeys(STATES, 0)})
        state = item.get("state")
        if state in STATES:
            row[state] += 1
    return [RuleCount(service, rule, kind, **row) for (rule, kind), row in sorted(counts.items())]


def deadline_query(roles: Sequence[str], district: str | None) -> dict[str, str] | None:
    """The GET /deadlines query for a person (their first bureau role, their district), None if they have none."""
    scope = {"district": district} if district else {}
    for role in BUREAU_ROLES:
        if role in roles:  # an auditor acts on nothing: they see everything that is due, unfiltered
            return scope if role == "auditor" else {"role": role, **scope}
    return None

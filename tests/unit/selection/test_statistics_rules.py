"""Pure rules of the contact statistics (issue 14): rates, and which outcomes count as settled and as skipped."""

import pytest

from services.selection.statistics.rules import SETTLED, contact_rates, rate


def test_rate_rounds_and_has_no_value_without_a_count():
    assert rate(1, 3) == 0.3333 and rate(2, 3) == 0.6667 and rate(0, 5) == 0.0 and rate(4, 4) == 1.0
    assert rate(0, 0) is None
    for part, whole in ((4, 3), (-1, 2), (0, -1)):
        with pytest.raises(ValueError):
            rate(part, whole)


def test_r12_1_contact_rates_count_every_settled_turn_and_every_freeing_outcome_as_skipped():
    counts = {"confirmed": 3, "declined": 1, "unreachable": 1, "recused": 0, "dismissed": 1, "ineligible": 0,
              "pending": 7, "cancelled": 9}
    answer = contact_rates(counts)
    # pending people and those of a cancelled request have no outcome yet: not counted
    assert answer == {"settled": 6, "skipped": 3, "decline_rate": 0.1667, "unreachable_rate": 0.1667,
                      "skip_rate": 0.5}
    assert contact_rates({}) == {"settled": 0, "skipped": 0, "decline_rate": None, "unreachable_rate": None,
                                 "skip_rate": None}
    assert set(SETTLED) == {"confirmed", "declined", "unreachable", "recused", "dismissed", "ineligible"}

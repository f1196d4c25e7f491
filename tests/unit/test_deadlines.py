"""shared/deadlines.py: state of an item, the query's filters and the stable order (pure, no I/O)."""

from datetime import date

from shared.auth import Role
from shared.deadlines import Deadline, DeadlineQuery, select, state_of

TODAY = date(2026, 12, 3)


def item(due_on: date, *, rule="R20.1", subject="a", district=None, roles=("bureau_admin",)) -> Deadline:
    return Deadline(rule=rule, kind="k", title="期限", subject_type="activity", subject_id=subject,
                    district=district, roles=list(roles), due_on=due_on)


def query(**changes) -> DeadlineQuery:
    base = {"today": TODAY, "horizon": date(2026, 12, 17), "role": None, "district": None, "state": None}
    return DeadlineQuery(**(base | changes))


def test_state_is_overdue_after_the_due_day_due_on_it_upcoming_before():
    assert state_of(date(2026, 12, 2), TODAY) == "overdue"
    assert state_of(TODAY, TODAY) == "due"
    assert state_of(date(2026, 12, 4), TODAY) == "upcoming"


def test_items_beyond_the_horizon_are_left_out_and_the_rest_sorted_stably():
    items = [item(date(2026, 12, 20), subject="late"), item(TODAY, rule="R22.1", subject="b"),
             item(TODAY, rule="R20.1", subject="c"), item(date(2026, 11, 1), subject="old")]
    listed = select(items, query())
    assert [(d.subject_id, d.state) for d in listed.items] == [("old", "overdue"), ("c", "due"), ("b", "due")]
    assert listed.total == 3 and not listed.truncated and listed.as_of == TODAY


def test_role_district_and_state_filters():
    items = [item(TODAY, subject="city"), item(TODAY, subject="wd", district="文登区"),
             item(TODAY, subject="hc", district="环翠区"),
             item(date(2026, 12, 1), subject="fin", roles=("finance",))]
    assert [d.subject_id for d in select(items, query(district="文登区")).items] == ["fin", "city", "wd"]
    assert [d.subject_id for d in select(items, query(role=Role.FINANCE)).items] == ["fin"]
    assert [d.subject_id for d in select(items, query(state="overdue")).items] == ["fin"]

"""The roster query builder: parameters only, tally vs counted totals, keyset order."""

import uuid
from datetime import date

from services.registry.roster.service import ELIGIBLE_FIELDS, ROSTER_FIELDS, like_prefix, roster_query
from services.registry.schemas import EligibleSupervisor, SupervisorListItem

ON = date(2026, 6, 1)


def test_roster_query_values_are_parameters_only():
    after = ["王五", uuid.uuid4()]
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=50, after=after, district="环翠区'; DROP",
                             name="王%_", number="威监证〔2025〕", statuses=["active"])
    assert "DROP" not in sql and "王" not in sql and "威监证" not in sql
    assert args[0] == "环翠区'; DROP"
    assert "王\\%\\_%" in args and "威监证〔2025〕%" in args
    assert args[-1] == 51  # one more than the page: whether another page follows
    assert after[0] in args and after[1] in args
    assert "(name, id) > ($" in sql and "ORDER BY name, id LIMIT" in sql
    assert "(SELECT count(*) FROM registry.supervisor WHERE" in sql  # a name filter: counted over the matches


def test_roster_query_simple_filters_use_the_tally():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=50, district="高区", eligible=True)
    assert "supervisor_tally WHERE district = $1 AND eligible = $2" in sql
    assert args[:2] == ["高区", True]
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=50, statuses=["active", "candidate"])
    assert "supervisor_tally WHERE status = ANY($1::text[])" in sql and args[0] == ["active", "candidate"]
    sql, _ = roster_query(fields=ELIGIBLE_FIELDS, on=ON, limit=10)
    assert "supervisor_tally WHERE TRUE" in sql
    assert "::date" not in sql and "$1" in sql  # no unused (untyped) date parameter


def test_r4_1_roster_query_term_end_range_and_sort():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=5, sort="term_end", term_ends_from=date(2026, 6, 1),
                             term_ends_to=date(2026, 9, 1), after=[date(2026, 7, 1), uuid.uuid4()])
    assert "term_end >= $1" in sql and "term_end <= $2" in sql
    assert args[:2] == [date(2026, 6, 1), date(2026, 9, 1)]
    assert "(coalesce(term_end, DATE '2999-12-31'), id) > ($3::date, $4::uuid)" in sql
    assert "ORDER BY coalesce(term_end, DATE '2999-12-31'), id" in sql


def test_roster_query_training_state_and_terms():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=5, training_state="overdue",
                             term_year=2025, specialty_name="法律")
    assert "initial_training_due < $" in sql and ON in args
    assert date(2025, 12, 31) in args and date(2025, 1, 1) in args
    assert "specialties @> ARRAY[$1::text]" in sql
    assert "EXISTS (SELECT 1 FROM registry.specialty WHERE name = $1::text) AS known_" in sql


def test_like_prefix_escapes_wildcards():
    assert like_prefix("a%b_c\\") == "a\\%b\\_c\\\\%"


def test_roster_items_have_exactly_the_response_models_fields():
    # PostgreSQL renders the items (row_to_json over these fields): nothing more may leave, nothing may be missing
    assert list(ROSTER_FIELDS) == list(SupervisorListItem.model_fields)
    assert list(ELIGIBLE_FIELDS) == list(EligibleSupervisor.model_fields)
    assert "id" in ELIGIBLE_FIELDS  # the eligible list names whom it lists
    assert ROSTER_FIELDS["phone"] == "phone_masked"  # masked only (R3.1)
    sql, _ = roster_query(fields=ELIGIBLE_FIELDS, on=ON, limit=10)
    assert "row_to_json(item)" in sql and ("SELECT page.id AS id, page.name AS name, page.district AS district, "
                                           "page.specialties AS specialties) AS item") in sql

"""The roster query builder: parameters only, tally vs counted totals."""

from datetime import date

from services.registry.service import ELIGIBLE_COLUMNS, ROSTER_COLUMNS, roster_query

ON = date(2026, 6, 1)


def test_roster_query_values_are_parameters_only():
    sql, args = roster_query(columns=ROSTER_COLUMNS, on=ON, limit=50, offset=100, district="环翠区'; DROP",
                             name="王%_", status="active")
    assert "DROP" not in sql and "王" not in sql
    assert args[0] == "环翠区'; DROP"
    assert "王\\%\\_%" in args
    assert args[-2:] == [50, 100]
    assert "count(*) OVER ()" in sql  # a name filter: counted over the matches


def test_roster_query_simple_filters_use_the_tally():
    sql, args = roster_query(columns=ROSTER_COLUMNS, on=ON, limit=50, offset=0, district="高区", eligible=True)
    assert "supervisor_tally WHERE district = $1 AND eligible = $2" in sql
    assert args[:2] == ["高区", True]
    sql, _ = roster_query(columns=ELIGIBLE_COLUMNS, on=ON, limit=10, offset=0)
    assert "supervisor_tally WHERE TRUE" in sql
    assert "::date" not in sql and "$1" in sql  # no unused (untyped) date parameter


def test_roster_query_training_state_and_terms():
    sql, args = roster_query(columns=ROSTER_COLUMNS, on=ON, limit=5, offset=0, training_state="overdue",
                             term_year=2025, specialty_name="法律")
    assert "initial_training_due < $" in sql and ON in args
    assert date(2025, 12, 31) in args and date(2025, 1, 1) in args
    assert "specialties @> ARRAY[$1::text]" in sql

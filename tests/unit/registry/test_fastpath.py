"""The roster query builder: parameters only, tally vs counted totals."""

from datetime import date

from services.registry.roster.service import ELIGIBLE_FIELDS, ROSTER_FIELDS, roster_query
from services.registry.schemas import EligibleSupervisor, SupervisorListItem

ON = date(2026, 6, 1)


def test_roster_query_values_are_parameters_only():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=50, offset=100, district="环翠区'; DROP",
                             name="王%_", status="active")
    assert "DROP" not in sql and "王" not in sql
    assert args[0] == "环翠区'; DROP"
    assert "王\\%\\_%" in args
    assert args[-2:] == [50, 100]
    assert "count(*) OVER ()" in sql  # a name filter: counted over the matches


def test_roster_query_simple_filters_use_the_tally():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=50, offset=0, district="高区", eligible=True)
    assert "supervisor_tally WHERE district = $1 AND eligible = $2" in sql
    assert args[:2] == ["高区", True]
    sql, _ = roster_query(fields=ELIGIBLE_FIELDS, on=ON, limit=10, offset=0)
    assert "supervisor_tally WHERE TRUE" in sql
    assert "::date" not in sql and "$1" in sql  # no unused (untyped) date parameter


def test_roster_query_training_state_and_terms():
    sql, args = roster_query(fields=ROSTER_FIELDS, on=ON, limit=5, offset=0, training_state="overdue",
                             term_year=2025, specialty_name="法律")
    assert "initial_training_due < $" in sql and ON in args
    assert date(2025, 12, 31) in args and date(2025, 1, 1) in args
    assert "specialties @> ARRAY[$1::text]" in sql


def test_roster_items_have_exactly_the_response_models_fields():
    # PostgreSQL renders the items (row_to_json over these fields): nothing more may leave, nothing may be missing
    assert list(ROSTER_FIELDS) == list(SupervisorListItem.model_fields)
    assert list(ELIGIBLE_FIELDS) == list(EligibleSupervisor.model_fields)
    assert ROSTER_FIELDS["phone"] == "phone_masked"  # masked only (R3.1)
    sql, _ = roster_query(fields=ELIGIBLE_FIELDS, on=ON, limit=10, offset=0)
    assert "row_to_json(item)" in sql and "SELECT page.name, page.district, page.specialties) AS item" in sql

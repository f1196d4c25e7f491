"""Keyset cursors of selection's work lists (shared/pagination.py) and their date ranges: pure, no I/O."""

import hashlib
import hmac
import uuid
from datetime import UTC, date, datetime

import pytest

from shared import pagination as paging
from shared.errors import ProblemError


def sign(context: str, message: str) -> str:
    return hmac.new(b"k" * 32, context.encode() + b"\x00" + message.encode(), hashlib.sha256).hexdigest()


KEY = [datetime(2026, 12, 3, 1, 0, tzinfo=UTC), uuid.uuid4()]
FILTERS = {"status": ["drawn"], "from": date(2026, 12, 1), "district": "环翠区"}
TYPES = (datetime, uuid.UUID)


def test_cursor_round_trip_gives_the_typed_key_back():
    token = paging.encode(sign, scope="requests", filters=FILTERS, key=KEY)
    assert paging.decode(sign, token, scope="requests", filters=dict(FILTERS), types=TYPES) == KEY
    assert paging.decode(sign, None, scope="requests", filters=FILTERS, types=TYPES) is None


def _tampered(token: str) -> list[str]:
    body, _, mac = token.partition(".")
    flip = "A" if body[3] != "A" else "B"
    return [
        body[:3] + flip + body[4:] + "." + mac,
        body + "." + mac[:-1] + ("0" if mac[-1] != "0" else "1"),
        body,
        "." + mac,
        body + ".",
        "",
        "not a cursor",
        body + "." + mac + "x",
        "%%%." + mac,
    ]


@pytest.mark.parametrize("case", range(9))
def test_a_tampered_cursor_is_a_422_invalid_cursor(case):
    token = paging.encode(sign, scope="requests", filters=FILTERS, key=KEY)
    with pytest.raises(ProblemError) as caught:
        paging.decode(sign, _tampered(token)[case], scope="requests", filters=FILTERS, types=TYPES)
    assert (caught.value.status, caught.value.code) == (422, "invalid_cursor")


def test_a_cursor_is_bound_to_its_list_and_its_filters():
    token = paging.encode(sign, scope="requests", filters=FILTERS, key=KEY)
    for scope, filters in (("recusals", FILTERS), ("requests", {**FILTERS, "status": ["staffed"]})):
        with pytest.raises(ProblemError) as caught:
            paging.decode(sign, token, scope=scope, filters=filters, types=TYPES)
        assert caught.value.code == "invalid_cursor"


def test_a_well_signed_cursor_of_the_wrong_shape_is_still_a_422():
    """A signed key of other types (a bug, or a key rotated between deployments) never becomes a 500."""
    token = paging.encode(sign, scope="pool", filters={}, key=["张三", "not-a-uuid"])
    with pytest.raises(ProblemError) as caught:
        paging.decode(sign, token, scope="pool", filters={}, types=(str, uuid.UUID))
    assert caught.value.code == "invalid_cursor"
    naive = paging.encode(sign, scope="pool", filters={}, key=["2026-12-01T00:00:00", str(uuid.uuid4())])
    with pytest.raises(ProblemError):
        paging.decode(sign, naive, scope="pool", filters={}, types=TYPES)


def test_work_list_date_range_reversed_or_out_of_bounds():
    assert paging.date_range_problem(None, None) is None
    assert paging.date_range_problem(date(2026, 12, 1), date(2026, 12, 1)) is None
    assert paging.date_range_problem(date(2026, 12, 2), date(2026, 12, 1))[0] == "invalid_range"
    assert paging.date_range_problem(date(1, 1, 1), None)[0] == "date_out_of_range"
    assert paging.date_range_problem(None, date(9999, 12, 31))[0] == "date_out_of_range"

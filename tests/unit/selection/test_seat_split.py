"""The seat split is the bureau's policy (R11.1 nearby combined with cross-district), not the requester's."""

import pytest

from services.selection.requests.rules import split_seats


@pytest.mark.parametrize(("seats", "share", "expected"), [
    (1, 0.5, (1, 0)), (2, 0.5, (1, 1)), (3, 0.5, (2, 1)), (5, 0.0, (0, 5)), (3, 1.0, (3, 0)), (4, 0.3, (2, 2)),
])
def test_r11_1_seat_split_is_ceil_of_the_bureaus_local_share(seats, share, expected):
    assert split_seats(seats, share) == expected

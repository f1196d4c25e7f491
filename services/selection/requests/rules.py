"""Pure rules of a supervision request owned by selection: the seat split (R11.1).

The lead time (R10.1, R10.2, R44.1) is one rule for casework and selection: `shared.lead_time`.
"""

import math


def split_seats(seats: int, local_share: float) -> tuple[int, int]:
    """(local, cross) seats (R11.1 nearby combined with cross-district): ceil(seats × the bureau's local share)."""
    seats_local = max(0, min(seats, math.ceil(seats * local_share)))
    return seats_local, seats - seats_local

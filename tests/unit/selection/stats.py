"""Standard-library statistics for the draw tests (no numpy/scipy).

chi2_sf(x, k): the chi-square survival function P(X >= x) for k degrees of freedom, computed as
the regularized upper incomplete gamma Q(k/2, x/2) (series for x < a + 1, Lentz continued
fraction otherwise; Numerical Recipes §6.2), accurate to ~1e-12, far beyond the 0.001 threshold.
binomial_z(successes, n, p): the normal-approximation z score (n·p·(1-p) is in the thousands in
our tests, so the approximation error is negligible); |z| < 3.29 ⇔ two-sided p > 0.001.
"""

import math

Z_0_001_TWO_SIDED = 3.2905


def _gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_cf(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x)."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        return 1.0 - _gamma_series(a, x)
    return _gamma_cf(a, x)


def chi2_sf(x: float, k: int) -> float:
    return gamma_q(k / 2, x / 2)


def chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def binomial_z(successes: int, n: int, p: float) -> float:
    return (successes - n * p) / math.sqrt(n * p * (1 - p))

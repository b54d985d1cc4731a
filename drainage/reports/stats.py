"""Significance of a difference between two variants, with the standard library only.

- `two_proportion_test`: pooled two-proportion z-test (clicks out of reach, orders out of clicks), the same
  p-value as R's `prop.test(correct = FALSE)`; None when any expected count is under 5 (the normal approximation
  is not valid there, so no verdict is better than a wrong one).
- `rate_test`: two Poisson rates (clicks per post): given the total, the first variant's count is binomial with
  p = its share of the posts; exact two-sided binomial p-value (R's `binom.test`) up to 2,000 events, the normal
  approximation with continuity correction beyond.
- `wilson_interval`: 95 % confidence interval of a proportion, for the charts.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054
EXACT_LIMIT = 2000


def normal_two_sided(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value that x1/n1 and x2/n2 come from the same proportion (None: too little data)."""
    if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        return None
    pooled = (x1 + x2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) < 5:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return normal_two_sided((x1 / n1 - x2 / n2) / se)


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test: the probability of outcomes no more likely than k (as R's binom.test)."""
    if n == 0:
        return 1.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if k == round(p * n) else 0.0
    logs = [_log_binomial_pmf(i, n, p) for i in range(n + 1)]
    observed = logs[k]
    limit = observed + math.log1p(1e-7)
    return min(1.0, math.fsum(math.exp(v) for v in logs if v <= limit))


def rate_test(x1: int, t1: float, x2: int, t2: float) -> float | None:
    """Two-sided p-value that x1 events in exposure t1 and x2 in t2 have the same rate (None: no exposure)."""
    if t1 <= 0 or t2 <= 0 or x1 < 0 or x2 < 0:
        return None
    n = x1 + x2
    share = t1 / (t1 + t2)
    if n <= EXACT_LIMIT:
        return binomial_two_sided(x1, n, share)
    gap = max(abs(x1 - n * share) - 0.5, 0.0)  # continuity correction: closer to the exact test
    return normal_two_sided(gap / math.sqrt(n * share * (1 - share)))


def wilson_interval(x: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of the proportion x/n ((0, 0) when n is 0)."""
    if n <= 0:
        return 0.0, 0.0
    p = min(max(x / n, 0.0), 1.0)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _log_binomial_pmf(k: int, n: int, p: float) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))

"""Per-variant statistics: rates with Wilson intervals, tests of each variant against control.

Rates are per impression (one recommendation list shown): the share of impressions with at
least one click (``view``), add-to-cart or purchase of a listed product, so each is a binomial
proportion. Revenue per impression is the mean of each impression's attributed purchase value
(prices known at attribution time; unknown prices count 0). Tests are two-sided: a pooled
two-proportion z-test for rates, Welch's t-test for revenue (scipy's implementation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as st

CONFIDENCE = 0.95
RATES = ("ctr", "cart_rate", "purchase_rate")
_COUNT_OF = {"ctr": "clicks", "cart_rate": "carts", "purchase_rate": "purchases"}


@dataclass(frozen=True)
class VariantCounts:
    """What the ledger counted for one variant (``revenue_sq``: sum of squared per-impression
    revenue, for the variance)."""

    impressions: int
    clicks: int = 0
    carts: int = 0
    purchases: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a binomial proportion (sensible at 0 and at small n)."""
    if trials == 0:
        return Interval(0.0, 1.0)
    ci = st.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return Interval(float(ci.low), float(ci.high))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of H0 p1 == p2 with the pooled standard error; (0, 1) when undefined."""
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, float(2 * st.norm.sf(abs(z)))


def difference_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> Interval:
    """Wald (unpooled) interval of p1 - p2: the effect size a growth team reads next to p."""
    if n1 == 0 or n2 == 0:
        return Interval(-1.0, 1.0)
    p1, p2 = x1 / n1, x2 / n2
    half = float(st.norm.ppf(0.5 + confidence / 2)) * math.sqrt(
        p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    )
    return Interval(p1 - p2 - half, p1 - p2 + half)


def _mean_sd(total: float, total_sq: float, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    mean = total / n
    if n < 2:
        return mean, 0.0
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    return mean, math.sqrt(var)


def welch(a: VariantCounts, b: VariantCounts) -> tuple[float, float]:
    """(t, two-sided p) of Welch's test on revenue per impression; (0, 1) when undefined."""
    m1, s1 = _mean_sd(a.revenue, a.revenue_sq, a.impressions)
    m2, s2 = _mean_sd(b.revenue, b.revenue_sq, b.impressions)
    if a.impressions < 2 or b.impressions < 2 or (s1 == 0 and s2 == 0):
        return 0.0, 1.0
    res = st.ttest_ind_from_stats(m1, s1, a.impressions, m2, s2, b.impressions, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def _mean_interval(counts: VariantCounts) -> Interval:
    mean, sd = _mean_sd(counts.revenue, counts.revenue_sq, counts.impressions)
    if counts.impressions < 2:
        return Interval(mean, mean)
    half = float(st.t.ppf(0.5 + CONFIDENCE / 2, counts.impressions - 1)) * sd
    half /= math.sqrt(counts.impressions)
    return Interval(mean - half, mean + half)


def variant_table(
    counts: Mapping[str, VariantCounts], control: str, alpha: float = 1 - CONFIDENCE
) -> list[dict[str, Any]]:
    """One row per variant: counts, rates with 95% intervals, and (not for control) the lift,
    statistic and p-value of each metric against ``control``; ``significant`` is p < alpha."""
    base = counts.get(control, VariantCounts(0))
    rows = []
    for name, c in counts.items():
        row: dict[str, Any] = {
            "variant": name,
            "control": name == control,
            "impressions": c.impressions,
            "clicks": c.clicks,
            "carts": c.carts,
            "purchases": c.purchases,
            "revenue": round(c.revenue, 2),
        }
        for rate in RATES:
            x = getattr(c, _COUNT_OF[rate])
            ci = wilson(x, c.impressions)
            value = x / c.impressions if c.impressions else 0.0
            row[rate] = {"value": value, "ci95": [ci.low, ci.high]}
            if name != control:
                z, p = two_proportion_z(
                    x, c.impressions, getattr(base, _COUNT_OF[rate]), base.impressions
                )
                base_value = (
                    getattr(base, _COUNT_OF[rate]) / base.impressions if (base.impressions) else 0.0
                )
                diff_ci = difference_interval(
                    x, c.impressions, getattr(base, _COUNT_OF[rate]), base.impressions
                )
                row[rate]["vs_control"] = {
                    "difference": value - base_value,
                    "difference_ci95": [diff_ci.low, diff_ci.high],
                    "z": z,
                    "p_value": p,
                    "significant": p < alpha,
                }
        mean = c.revenue / c.impressions if c.impressions else 0.0
        ci = _mean_interval(c)
        row["revenue_per_impression"] = {"value": mean, "ci95": [ci.low, ci.high]}
        if name != control:
            t, p = welch(c, base)
            base_mean = base.revenue / base.impressions if base.impressions else 0.0
            row["revenue_per_impression"]["vs_control"] = {
                "difference": mean - base_mean,
                "t": t,
                "p_value": p,
                "significant": p < alpha,
            }
        rows.append(row)
    return rows


def verdict(rows: Sequence[Mapping[str, Any]], metric: str = "ctr") -> str:
    """One line a growth team reads: which variant wins on ``metric``, or that none does yet."""
    winners = []
    for row in rows:
        test = row[metric].get("vs_control")
        if test and test["significant"]:
            word = "beats" if test["difference"] > 0 else "loses to"
            winners.append(f"{row['variant']} {word} control (p={test['p_value']:.3g})")
    return "; ".join(winners) if winners else f"no significant difference in {metric}"

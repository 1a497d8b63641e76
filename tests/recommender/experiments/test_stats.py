"""Per-variant statistics against an example computed by hand (formulas in the comments)."""

from __future__ import annotations

import pytest

from recommender.experiments.stats import (
    VariantCounts,
    two_proportion_z,
    variant_table,
    verdict,
    welch,
    wilson,
)


def test_wilson_interval_matches_the_hand_computed_one() -> None:
    # p = 50/1000, z = 1.959964, d = 1 + z^2/n = 1.0038415
    # centre = (p + z^2/2n)/d = 0.0517221; half = z*sqrt(p(1-p)/n + z^2/4n^2)/d = 0.0135918
    ci = wilson(50, 1000)
    assert ci.low == pytest.approx(0.0381303, abs=1e-6)
    assert ci.high == pytest.approx(0.0653138, abs=1e-6)
    assert wilson(0, 0).low == 0.0 and wilson(0, 0).high == 1.0


def test_two_proportion_z_test_matches_the_hand_computed_one() -> None:
    # pooled = 130/2000 = 0.065; se = sqrt(0.065*0.935*(1/1000+1/1000)) = 0.0110250
    # z = (0.080 - 0.050)/se = 2.72110; p = 2*(1 - Phi(2.72110)) = 0.0065066
    z, p = two_proportion_z(80, 1000, 50, 1000)
    assert z == pytest.approx(2.721095, abs=1e-5)
    assert p == pytest.approx(0.0065066, abs=1e-6)
    assert two_proportion_z(0, 0, 3, 10) == (0.0, 1.0)


def test_welch_test_matches_the_hand_computed_one() -> None:
    # variant revenues per impression [0, 200, 0, 100]: mean 75, var (50000 - 4*75^2)/3 = 9166.7
    # control [0, 0, 100, 0]: mean 25, var (10000 - 4*25^2)/3 = 2500
    # se^2 = 9166.7/4 + 2500/4 = 2916.7; t = 50/sqrt(2916.7) = 0.92582
    # df = 2916.7^2 / ((2291.7^2 + 625^2)/3) = 4.5231; p = 2*(1 - T_df(0.92582)) = 0.40124
    variant = VariantCounts(4, purchases=2, revenue=300.0, revenue_sq=50_000.0)
    control = VariantCounts(4, purchases=1, revenue=100.0, revenue_sq=10_000.0)
    t, p = welch(variant, control)
    assert t == pytest.approx(0.925820, abs=1e-5)
    assert p == pytest.approx(0.401243, abs=1e-5)


def test_variant_table_reports_rates_intervals_and_tests_against_control() -> None:
    counts = {
        "control": VariantCounts(
            1000, clicks=50, carts=20, purchases=10, revenue=1000.0, revenue_sq=100_000.0
        ),
        "hybrid": VariantCounts(
            1000, clicks=80, carts=20, purchases=10, revenue=1000.0, revenue_sq=100_000.0
        ),
    }
    control, hybrid = variant_table(counts, "control")
    assert control["control"] is True and "vs_control" not in control["ctr"]
    assert control["ctr"]["value"] == 0.05
    assert control["ctr"]["ci95"] == pytest.approx([0.0381303, 0.0653138], abs=1e-6)
    test = hybrid["ctr"]["vs_control"]
    assert test["difference"] == pytest.approx(0.03)
    # se = sqrt(0.08*0.92/1000 + 0.05*0.95/1000) = 0.0110045; 0.03 -+ 1.959964*se
    assert test["difference_ci95"] == pytest.approx([0.0084315, 0.0515685], abs=1e-6)
    assert test["p_value"] == pytest.approx(0.0065066, abs=1e-6)
    assert test["significant"] is True
    assert hybrid["cart_rate"]["vs_control"]["p_value"] == 1.0
    assert hybrid["revenue_per_impression"]["value"] == 1.0
    assert verdict([control, hybrid]) == "hybrid beats control (p=0.00651)"
    assert verdict([control, hybrid], "cart_rate") == "no significant difference in cart_rate"

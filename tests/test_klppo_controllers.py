"""KLPPO's controllers: the rules that adapt beta and the step size."""

import math

import pytest

from sb3_npg.klppo.controllers import (
    KL_ADAPTATIONS,
    adaptive_kl_coef,
    clip_kl_coef,
    dual_kl_coef,
    next_kl_coef,
    tracking_lr_multiplier,
)

# --------------------------------------------------------------------------------------------------
# Beta rules
# --------------------------------------------------------------------------------------------------

TARGET = 0.01


class TestAdaptiveRule:
    def test_inside_the_dead_band_keeps_beta(self):
        for kl in (TARGET / 1.5, TARGET, TARGET * 1.5):  # both edges included
            assert adaptive_kl_coef(3.0, kl, TARGET) == 3.0

    def test_just_below_the_band_halves(self):
        kl = math.nextafter(TARGET / 1.5, 0.0)
        assert adaptive_kl_coef(3.0, kl, TARGET) == 1.5

    def test_just_above_the_band_doubles(self):
        kl = math.nextafter(TARGET * 1.5, 1.0)
        assert adaptive_kl_coef(3.0, kl, TARGET) == 6.0

    def test_extremes(self):
        assert adaptive_kl_coef(1.0, 0.0, TARGET) == 0.5
        assert adaptive_kl_coef(1.0, math.inf, TARGET) == 2.0
        assert adaptive_kl_coef(0.0, 1.0, TARGET) == 0.0  # zero stays zero under a multiplicative rule

    def test_custom_tolerance_and_factor(self):
        assert adaptive_kl_coef(1.0, 0.019, TARGET, tolerance=2.0, factor=3.0) == 1.0
        assert adaptive_kl_coef(1.0, 0.021, TARGET, tolerance=2.0, factor=3.0) == 3.0
        assert adaptive_kl_coef(1.0, 0.0049, TARGET, tolerance=2.0, factor=3.0) == pytest.approx(1.0 / 3.0, rel=1e-15)


class TestDualRule:
    def test_at_the_target_beta_is_unchanged(self):
        assert dual_kl_coef(2.0, TARGET, TARGET, learning_rate=100.0) == 2.0

    def test_gradient_ascent_step_in_float64(self):
        assert dual_kl_coef(2.0, 0.03, TARGET, learning_rate=100.0) == pytest.approx(2.0 + 100.0 * 0.02, rel=1e-15)
        assert dual_kl_coef(2.0, 0.005, TARGET, learning_rate=100.0) == pytest.approx(2.0 - 100.0 * 0.005, rel=1e-15)

    def test_projection_on_zero(self):
        assert dual_kl_coef(0.1, 0.0, TARGET, learning_rate=100.0) == 0.0  # 0.1 - 1.0 < 0
        assert dual_kl_coef(1.0, 0.0, TARGET, learning_rate=100.0) == 0.0  # exactly 0, stays 0
        assert dual_kl_coef(0.0, 0.0, TARGET, learning_rate=100.0) == 0.0

    def test_zero_learning_rate_keeps_beta(self):
        assert dual_kl_coef(1.5, 10.0, TARGET, learning_rate=0.0) == 1.5


class TestNextKlCoef:
    def test_fixed_never_changes_even_outside_the_bounds(self):
        assert next_kl_coef("fixed", 5.0, 1.0, TARGET, 100.0, kl_coef_min=0.0, kl_coef_max=1.0) == 5.0

    @pytest.mark.parametrize("adaptation", ["adaptive", "tracking"])
    def test_paper_rule_modes(self, adaptation):
        assert next_kl_coef(adaptation, 1.0, 1.0, TARGET, 100.0) == 2.0
        assert next_kl_coef(adaptation, 1.0, 0.0, TARGET, 100.0) == 0.5
        assert next_kl_coef(adaptation, 1.0, TARGET, TARGET, 100.0) == 1.0

    def test_dual(self):
        assert next_kl_coef("dual", 1.0, 0.02, TARGET, 100.0) == pytest.approx(2.0, rel=1e-15)

    @pytest.mark.parametrize("adaptation", ["adaptive", "tracking", "dual"])
    def test_bounds(self, adaptation):
        # At the upper bound a large KL cannot raise beta, at the lower bound a zero KL cannot lower it
        assert next_kl_coef(adaptation, 4.0, 1.0, TARGET, 100.0, kl_coef_min=0.5, kl_coef_max=4.0) == 4.0
        assert next_kl_coef(adaptation, 0.5, 0.0, TARGET, 100.0, kl_coef_min=0.5, kl_coef_max=4.0) == 0.5
        assert next_kl_coef(adaptation, 3.0, 1.0, TARGET, 100.0, kl_coef_min=0.5, kl_coef_max=4.0) == 4.0

    def test_unknown_rule(self):
        with pytest.raises(ValueError, match="adaptation must be one of"):
            next_kl_coef("paper", 1.0, 0.0, TARGET, 1.0)

    def test_modes_are_listed(self):
        assert set(KL_ADAPTATIONS) == {"tracking", "adaptive", "dual", "fixed"}

    def test_clip(self):
        assert clip_kl_coef(-1.0, 0.0, 2.0) == 0.0
        assert clip_kl_coef(3.0, 0.0, 2.0) == 2.0
        assert clip_kl_coef(1.0, 0.0, 2.0) == 1.0


class TestTrackingStepSizeRule:
    def test_on_the_ramp_keeps_the_multiplier(self):
        assert tracking_lr_multiplier(3.0, TARGET, TARGET) == 3.0
        assert tracking_lr_multiplier(3.0, 0.25 * TARGET, TARGET, progress=0.25) == pytest.approx(3.0, rel=1e-15)

    def test_square_root_correction_in_float64(self):
        # KL 2.25 times below the ramp: the step grows by sqrt(2.25) = 1.5
        assert tracking_lr_multiplier(1.0, TARGET / 2.25, TARGET) == pytest.approx(1.5, rel=1e-15)
        assert tracking_lr_multiplier(1.0, TARGET * 2.25, TARGET) == pytest.approx(1.0 / 1.5, rel=1e-15)
        assert tracking_lr_multiplier(1.0, TARGET / 4.0, TARGET, gain=0.25) == pytest.approx(math.sqrt(2.0), rel=1e-15)

    def test_change_is_limited_per_call(self):
        assert tracking_lr_multiplier(1.0, TARGET / 1000.0, TARGET) == 2.0
        assert tracking_lr_multiplier(1.0, TARGET * 1000.0, TARGET) == 0.5
        assert tracking_lr_multiplier(1.0, TARGET / 1000.0, TARGET, max_change=3.0) == 3.0
        # Exactly at the limit
        assert tracking_lr_multiplier(1.0, TARGET / 4.0, TARGET) == pytest.approx(2.0, rel=1e-15)

    def test_early_stop_lowers_the_step(self):
        # Stopped after 20% of the steps with the KL at 1.25 target: 6.25 times above the ramp
        assert tracking_lr_multiplier(1.0, 1.25 * TARGET, TARGET, progress=0.2) == 0.5

    def test_zero_or_negative_kl_counts_as_far_below(self):
        assert tracking_lr_multiplier(1.0, 0.0, TARGET) == 2.0
        assert tracking_lr_multiplier(1.0, -1e-12, TARGET) == 2.0

    def test_bounds(self):
        assert tracking_lr_multiplier(8.0, 0.0, TARGET, multiplier_max=10.0) == 10.0
        assert tracking_lr_multiplier(0.15, 1.0, TARGET, multiplier_min=0.1) == 0.1
        assert tracking_lr_multiplier(10.0, 0.0, TARGET, multiplier_max=10.0) == 10.0

    def test_zero_gain_never_changes(self):
        assert tracking_lr_multiplier(2.0, 1e-9, TARGET, gain=0.0) == 2.0

    @pytest.mark.parametrize("progress", [0.0, -0.5, 1.5, math.nan])
    def test_invalid_progress(self, progress):
        with pytest.raises(ValueError, match="progress"):
            tracking_lr_multiplier(1.0, TARGET, TARGET, progress=progress)

"""Robust statistics both modes share (attnad.robust)."""

import numpy as np

from attnad.robust import (center_scale, column_center_scale, error_floor, normalised_mean,
                           spread, trimmed_mean)


def test_spread_falls_back_to_the_std_then_to_one():
    assert spread(0.0, 1.349, 5.0) == 1.0
    assert spread(2.0, 2.0, 0.5) == 0.5  # one common value: IQR 0
    assert spread(2.0, 2.0, 0.0) == 1.0  # a constant
    assert np.array_equal(spread(np.array([0.0, 1.0]), np.array([1.349, 1.0]),
                                 np.array([9.0, np.nan])), [1.0, 1.0])


def test_center_scale_ignores_missing_and_infinite_values_and_outliers():
    x = np.r_[np.arange(101.0), np.nan, np.inf, 1e9]
    c, s = center_scale(x)
    assert c == 50.5  # the median of 0..100 and 1e9
    assert 35 < s < 40  # IQR / 1.349, not pulled by 1e9
    assert center_scale(np.array([np.nan])) == (0.0, 1.0)


def test_column_center_scale_per_column_with_an_all_missing_one():
    x = np.column_stack([np.arange(10.0), np.full(10, np.nan)])
    c, s = column_center_scale(x)
    assert c.tolist() == [4.5, 0.0] and s[1] == 1.0


def test_trimmed_mean_leaves_out_the_highest_errors():
    err = np.column_stack([np.r_[np.ones(99), 1000.0], np.full(100, np.nan)])
    mean, counts = trimmed_mean(err, 0.05)
    assert mean[0] == 1.0 and np.isnan(mean[1])
    assert counts.tolist() == [100, 0]


def test_error_floor_is_a_share_of_the_median_typical_error():
    assert error_floor(np.array([1.0, 2.0, 3.0, np.nan]), 0.01) == 0.02
    assert error_floor(np.array([np.nan]), 0.01) == 1e-6


def test_normalised_mean_averages_finite_terms_and_is_zero_without_any():
    err = np.array([[2.0, np.nan], [np.nan, np.nan]])
    mean, terms = normalised_mean(err, np.array([2.0, 1.0]), axis=1)
    assert mean.tolist() == [1.0, 0.0]
    assert terms.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    one, _ = normalised_mean(np.array([[4.0], [np.nan]]), 2.0, axis=1)
    assert one.tolist() == [2.0, 0.0]

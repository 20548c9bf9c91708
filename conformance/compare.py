"""Measure how far a run is from the float64 reference, and fail with the number.

Deviations are defined in :mod:`neat.conformance.tolerances`. A non-finite value
where the reference is finite counts as an infinite deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Deviation:
    """The largest deviation of a run and where it happened (0-based step, tensor index or key)."""

    value: float
    step: int
    where: str

    def check(self, tolerance: float, what: str) -> float:
        """Raise ``AssertionError`` naming ``what``, the size and the place when above ``tolerance``;
        return ``value / tolerance`` otherwise."""
        if not self.value <= tolerance:
            raise AssertionError(
                f"{what}: deviation {self.value:.3g} > tolerance {tolerance:.3g} "
                f"({self.value / tolerance:.3g}× the tolerance) at step {self.step + 1}, "
                f"{self.where}"
            )
        return self.value / tolerance


def _max_abs(actual, expected) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape} where the reference has {expected.shape}")
    if not np.all(np.isfinite(actual) | ~np.isfinite(expected)):
        return float("inf")
    return float(np.max(np.abs(actual - expected), initial=0.0))


def params_deviation(actual_steps, expected_steps) -> Deviation:
    """``max |θ_k(s) − θ_k^ref(s)| / scale_k`` over steps ``s`` and tensors ``k``."""
    if len(actual_steps) != len(expected_steps):
        raise AssertionError(f"got parameters for {len(actual_steps)} steps, expected {len(expected_steps)}")
    num_tensors = len(expected_steps[0])
    scales = [
        max(float(np.max(np.abs(step[k]), initial=0.0)) for step in expected_steps) or 1.0 for k in range(num_tensors)
    ]
    worst = Deviation(0.0, 0, "tensor 0")
    for s, (actual, expected) in enumerate(zip(actual_steps, expected_steps)):
        if len(actual) != num_tensors:
            raise AssertionError(f"step {s + 1}: got {len(actual)} tensors, expected {num_tensors}")
        for k in range(num_tensors):
            value = _max_abs(actual[k], expected[k]) / scales[k]
            if not value <= worst.value:
                worst = Deviation(value, s, f"tensor {k}")
    return worst


#: Diagnostics compared relative to their value; the others are absolute (bounded by 1).
_RELATIVE_DIAGNOSTICS = ("step_scale",)
DIAGNOSTIC_KEYS = ("alignment", "kappa", "step_scale", "mean_alignment", "skipped_steps")


def diagnostics_deviation(actual_steps: list, expected: dict) -> Deviation:
    """Largest deviation of the float diagnostics; ``skipped_steps`` must match exactly."""
    worst = Deviation(0.0, 0, "alignment")
    for s, actual in enumerate(actual_steps):
        for key in DIAGNOSTIC_KEYS:
            reference = np.asarray(expected[key][s], dtype=np.float64)
            if key == "skipped_steps":
                value = 0.0 if np.array_equal(actual[key], reference) else float("inf")
            else:
                value = _max_abs(actual[key], reference)
                if key in _RELATIVE_DIAGNOSTICS:
                    value /= float(np.max(np.abs(reference), initial=1.0))
            if not value <= worst.value:
                worst = Deviation(
                    value, s, f"{key} = {np.asarray(actual[key]).tolist()} where the reference has {reference.tolist()}"
                )
    return worst

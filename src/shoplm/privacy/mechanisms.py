"""Calibrated noise from opendp: the Laplace mechanism over a vector of cells, scaled to ε.

The noise and its accounting are opendp's (``make_laplace``, calibrated by ``binary_search_param``
and checked with the measurement's own privacy map); nothing here draws a random number itself.
Counts get opendp's discrete Laplace (integers in, integers out); sums its Laplace over floats.
opendp samples from the operating system's secure generator, which cannot be seeded: a release
cannot be replayed from a seed, which is the point.

Example:
    >>> noisy, scale = laplace_vector([10, 20, 30], sensitivity=2, epsilon=1.0, integer=True)
    >>> len(noisy), scale
    (3, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from shoplm.errors import InputError

__all__ = ["MECHANISM", "check_epsilon", "laplace_vector"]

#: How every release is noised, as stated in its output.
MECHANISM = "opendp make_laplace: discrete Laplace on counts, Laplace on clamped sums; pure ε-DP (δ = 0)"


@cache
def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")  # make_laplace is a contrib constructor in opendp 0.16
    return dp


def check_epsilon(epsilon: float) -> float:
    """``epsilon`` as a float if it is a finite positive number; :class:`InputError` otherwise.

    Example:
        >>> check_epsilon(0.5)
        0.5
        >>> check_epsilon(float("nan"))
        Traceback (most recent call last):
        ...
        shoplm.errors.InputError: [epsilon]: epsilon must be a finite number above 0, not nan
    """
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise InputError(f"epsilon must be a finite number above 0, not {epsilon!r}", field="epsilon") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"epsilon must be a finite number above 0, not {value!r}", field="epsilon")
    return value


def laplace_vector(
    values: Sequence[float] | np.ndarray, *, sensitivity: float, epsilon: float, integer: bool
) -> tuple[np.ndarray, float]:
    """Release ``values`` with Laplace noise giving ε-DP when one person moves them by ``sensitivity`` in L1.

    Args:
        values: the exact cell values (counts, or sums of clamped values).
        sensitivity: the most one person's data can change the vector, summed over cells (L1).
        epsilon: the privacy loss this release may cost (> 0).
        integer: counts (discrete Laplace, integer output) rather than sums.

    Returns:
        The noisy values, and the noise scale opendp calibrated (sensitivity / ε).

    Example:
        >>> noisy, scale = laplace_vector([1.5, 2.5], sensitivity=5.0, epsilon=0.5, integer=False)
        >>> scale
        10.0
    """
    dp = _opendp()
    epsilon = check_epsilon(epsilon)
    if integer:
        domain = dp.vector_domain(dp.atom_domain(T=int))
        metric = dp.l1_distance(T=int)
        d_in: float = math.ceil(sensitivity)
        data: list[Any] = [int(v) for v in np.asarray(values).tolist()]
    else:
        domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
        metric = dp.l1_distance(T=float)
        d_in = float(sensitivity)
        data = [float(v) for v in np.asarray(values, dtype=float).tolist()]

    def measurement(scale: float) -> Any:
        return dp.m.make_laplace(domain, metric, scale=scale)

    scale = float(dp.binary_search_param(measurement, d_in=d_in, d_out=epsilon))
    chosen = measurement(scale)
    if chosen.map(d_in) > epsilon:  # opendp's own privacy map is the judge, not our arithmetic
        raise AssertionError(f"calibrated scale {scale} does not give epsilon {epsilon}")
    if not data:
        return np.zeros(0, dtype=np.int64 if integer else float), scale
    noisy = chosen(data)
    return np.asarray(noisy, dtype=np.int64 if integer else float), scale

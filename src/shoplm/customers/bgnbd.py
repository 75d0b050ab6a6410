"""BG/NBD (how often, and for how long, a customer buys) and Gamma-Gamma (how much), fitted with scipy.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a
customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out with
probability p ~ Beta(a, b). Fitted by maximum likelihood (the paper's eq. 6) on
frequency / recency / T (see :mod:`shoplm.customers.summary`), over log-parameters with
L-BFGS-B from several starts.

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): a customer's spend per transaction
varies around their own mean, itself Gamma-distributed across customers; fitted on customers
with at least one repeat transaction. :func:`customer_lifetime_value` combines both.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(1.0, 500); T = np.full(500, 30.0); t_x = np.where(x > 0, rng.uniform(0, 30, 500), 0.0)
    >>> model = BetaGeoModel().fit(x, t_x, T)
    >>> sorted(model.params_)
    ['a', 'alpha', 'b', 'r']
    >>> bool(model.probability_alive([0], [0.0], [30.0])[0] == 1.0)
    True
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from shoplm.errors import InputError
from shoplm.estimator import Estimator

__all__ = ["BetaGeoModel", "GammaGammaModel", "bgnbd_log_likelihood", "customer_lifetime_value"]

_BGNBD_NAMES = ("r", "alpha", "a", "b")
_GG_NAMES = ("p", "q", "v")
#: log-parameter bounds: every parameter within [e^-12, e^12]; keeps a degenerate fit finite
_LOG_BOUND = 12.0


def _as_arrays(*columns: Any) -> list[np.ndarray]:
    arrays = [np.asarray(c, dtype=float).ravel() for c in columns]
    if len({a.size for a in arrays}) != 1:
        raise InputError("frequency, recency and T must have the same length")
    for array in arrays:
        if not np.isfinite(array).all():
            raise InputError("frequency, recency and T must be finite numbers")
    return arrays


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if x.size == 0:
        raise InputError("no customer to fit: the calibration period holds no purchase")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any():
        raise InputError("need frequency ≥ 0 and 0 ≤ recency ≤ T for every customer")


def bgnbd_log_likelihood(
    params: tuple[float, float, float, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under BG/NBD (Fader, Hardie & Lee 2005, eq. 6).

    Args:
        params: (r, alpha, a, b).
        x, t_x, T: frequency, recency and age arrays.

    Returns:
        One log-likelihood per customer.
    """
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped = np.full_like(x, -np.inf)
    dropped[repeat] = np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    return common + np.logaddexp(alive, dropped)


def _fit_log_params(negative_ll: Any, starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Minimise ``negative_ll`` over log-parameters from every start; the best result."""
    best_x, best_value = starts[0], np.inf
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * starts[0].size
    for start in starts:
        result = minimize(negative_ll, start, method="L-BFGS-B", bounds=bounds)
        polished = minimize(negative_ll, result.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10})
        candidate = polished if polished.fun <= result.fun else result
        if np.isfinite(candidate.fun) and candidate.fun < best_value:
            best_x, best_value = np.clip(candidate.x, -_LOG_BOUND, _LOG_BOUND), float(candidate.fun)
    if not np.isfinite(best_value):
        raise InputError("the likelihood could not be evaluated on this data (check for extreme values)")
    return best_x, best_value


class BetaGeoModel(Estimator):
    """BG/NBD purchase-count model; see the module docstring.

    Args:
        penalizer: L2 penalty on the parameters (0: plain maximum likelihood, as the paper).
        n_starts: optimiser starts (the first at r=α=a=b=1, the others random, seeded).
        seed: seed of the random starts.
    """

    def __init__(self, penalizer: float = 0.0, n_starts: int = 3, seed: int = 0) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.seed = seed

    def fit(self, frequency: Any, recency: Any, T: Any) -> Self:
        """Fit on one (frequency, recency, T) triple per customer (weeks or days, consistently).

        Raises:
            InputError: empty or inconsistent summaries (recency > T, negative counts).
        """
        x, t_x, age = _as_arrays(frequency, recency, T)
        _check_summary(x, t_x, age)
        if self.penalizer < 0 or self.n_starts < 1:
            raise InputError("penalizer must be ≥ 0 and n_starts ≥ 1")
        # Repeated (x, t_x, T) rows are frequent (every one-off buyer of a day): fit on unique ones.
        unique, counts = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
        ux, ut, uT = unique.T
        weights = counts.astype(float)

        def negative_ll(log_params: np.ndarray) -> float:
            params = np.exp(np.clip(log_params, -_LOG_BOUND, _LOG_BOUND))  # Nelder-Mead is unbounded
            with np.errstate(all="ignore"):
                ll = weights @ bgnbd_log_likelihood(tuple(params), ux, ut, uT)
            value = -ll / weights.sum() + (self.penalizer * float(params @ params) if self.penalizer else 0.0)
            return float(value) if np.isfinite(value) else 1e100

        rng = np.random.default_rng(self.seed)
        scale = max(float(np.mean(age)), 1e-3)
        starts = [np.log([1.0, scale / 10, 1.0, 1.0])]
        starts += [starts[0] + rng.normal(0, 1, 4) for _ in range(self.n_starts - 1)]
        best, value = _fit_log_params(negative_ll, starts)
        self.params_ = dict(zip(_BGNBD_NAMES, (float(v) for v in np.exp(best)), strict=True))
        self.log_likelihood_ = float(-value * weights.sum())
        self.n_customers_ = int(x.size)
        return self

    def _values(self) -> tuple[float, float, float, float]:
        self.check_fitted()
        return tuple(self.params_[name] for name in _BGNBD_NAMES)  # type: ignore[return-value]

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(the customer is still active at T | x, t_x, T); 1 for a customer without repeat purchase."""
        x, t_x, age = _as_arrays(frequency, recency, T)
        r, alpha, a, b = self._values()
        log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * np.log((alpha + age) / (alpha + t_x))
        odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700.0)), 0.0)
        return 1.0 / (1.0 + odds)

    def probability_no_purchase(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(no purchase in (T, T+t] | x, t_x, T): dropped out, or alive and silent.

        A BG/NBD customer can only drop out right after a purchase, so silence over the next
        ``t`` means either they are gone already or their (posterior) rate gave no event.
        """
        x, _, age = _as_arrays(frequency, recency, T)
        r, alpha, _, _ = self._values()
        alive = self.probability_alive(frequency, recency, T)
        silent = ((alpha + age) / (alpha + age + t)) ** (r + x)
        return (1.0 - alive) + alive * silent

    def expected_purchases(self, t: float | np.ndarray, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Expected transactions in (T, T+t] given the history (Fader, Hardie & Lee 2005, eq. 10)."""
        x, t_x, age = _as_arrays(frequency, recency, T)
        r, alpha, a, b = self._values()
        t = np.asarray(t, dtype=float)
        with np.errstate(all="ignore"):
            hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
            first = (a + b + x - 1) / (a - 1) if a != 1 else np.inf
            second = 1 - hyp * ((alpha + age) / (alpha + age + t)) ** (r + x)
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0)
        expected = first * second / (1 + odds)
        return np.where(t > 0, expected, 0.0)

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)]: repeat purchases in the first ``t`` after a customer's first purchase."""
        r, alpha, a, b = self._values()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.check_fitted()
        state = {"params": self.params_, "log_likelihood": self.log_likelihood_, "n_customers": self.n_customers_}
        return {"params": np.array([self.params_[n] for n in _BGNBD_NAMES])}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.params_ = {k: float(v) for k, v in state["params"].items()}
        self.log_likelihood_ = float(state["log_likelihood"])
        self.n_customers_ = int(state["n_customers"])


class GammaGammaModel(Estimator):
    """Gamma-Gamma spend-per-transaction model; see the module docstring.

    Customers without a repeat transaction carry no spend information of their own and are
    left out of the fit (as in the paper); their expected spend is the population mean.

    Args:
        penalizer: L2 penalty on the parameters.
        n_starts: optimiser starts.
        seed: seed of the random starts.
    """

    def __init__(self, penalizer: float = 0.0, n_starts: int = 3, seed: int = 0) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.seed = seed

    def fit(self, frequency: Any, monetary_value: Any) -> Self:
        """Fit on repeat-transaction counts and mean repeat spend per customer.

        Raises:
            InputError: fewer than 2 customers with a repeat transaction and a positive spend.
        """
        x, m = (np.asarray(c, dtype=float).ravel() for c in (frequency, monetary_value))
        if x.size != m.size:
            raise InputError("frequency and monetary_value must have the same length")
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        if usable.sum() < 2:
            raise InputError(
                f"Gamma-Gamma needs at least 2 customers with a repeat purchase and a positive spend, "
                f"found {int(usable.sum())}: use the mean spend instead"
            )
        x, m = x[usable], m[usable]

        def negative_ll(log_params: np.ndarray) -> float:
            p, q, v = np.exp(np.clip(log_params, -_LOG_BOUND, _LOG_BOUND))
            px = p * x
            with np.errstate(all="ignore"):
                ll = (
                    gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
                    + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
                )  # fmt: skip
            value = -ll.mean() + (self.penalizer * (p * p + q * q + v * v) if self.penalizer else 0.0)
            return float(value) if np.isfinite(value) else 1e100

        rng = np.random.default_rng(self.seed)
        starts = [np.log([1.0, 2.0, float(np.mean(m))])]
        starts += [starts[0] + rng.normal(0, 1, 3) for _ in range(self.n_starts - 1)]
        best, value = _fit_log_params(negative_ll, starts)
        self.params_ = dict(zip(_GG_NAMES, (float(v) for v in np.exp(best)), strict=True))
        self.log_likelihood_ = float(-value * x.size)
        self.n_customers_ = int(x.size)
        return self

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[spend per transaction | x, m_x]: the customer's mean shrunk toward the population's."""
        self.check_fitted()
        p, q, v = (self.params_[n] for n in _GG_NAMES)
        x = np.asarray(frequency, dtype=float)
        m = np.nan_to_num(np.asarray(monetary_value, dtype=float))
        population = p * v / (q - 1) if q > 1 else float("nan")
        return (q - 1) / (p * x + q - 1) * population + (p * x) / (p * x + q - 1) * m

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.check_fitted()
        state = {"params": self.params_, "log_likelihood": self.log_likelihood_, "n_customers": self.n_customers_}
        return {"params": np.array([self.params_[n] for n in _GG_NAMES])}, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.params_ = {k: float(v) for k, v in state["params"].items()}
        self.log_likelihood_ = float(state["log_likelihood"])
        self.n_customers_ = int(state["n_customers"])


def customer_lifetime_value(
    purchases: BetaGeoModel,
    spend: GammaGammaModel,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    periods: int = 12,
    period_length: float = 52.0 / 12.0,
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Discounted expected spend over the next ``periods`` periods (e.g. months) per customer.

    CLV = Σ_k E[spend] · (E[X(T + k·L)] - E[X(T + (k-1)·L)]) / (1 + d)^k, with L the period
    length in the summary's time unit (weeks by default: a month is 52/12 weeks).

    Args:
        purchases: a fitted BG/NBD model.
        spend: a fitted Gamma-Gamma model.
        frequency, recency, T, monetary_value: the customers' summary columns.
        periods: number of periods ahead.
        period_length: length of one period in the summary's unit.
        discount_rate: per period (0.01 a month ≈ 12.7 % a year).

    Returns:
        One value per customer, in the currency of ``monetary_value``.
    """
    if periods < 1 or period_length <= 0 or discount_rate < 0:
        raise InputError("need periods ≥ 1, period_length > 0 and discount_rate ≥ 0")
    value_per_purchase = spend.expected_spend(frequency, monetary_value)
    total = np.zeros_like(value_per_purchase, dtype=float)
    previous = np.zeros_like(total)
    for k in range(1, periods + 1):
        cumulative = purchases.expected_purchases(k * period_length, frequency, recency, T)
        total += value_per_purchase * (cumulative - previous) / (1 + discount_rate) ** k
        previous = cumulative
    return total

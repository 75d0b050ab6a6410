"""Federated training of any numpy-parameter model with Flower, in simulation (clients on Ray).

Each shop is a Flower ``ClientApp`` node that reads *only its own shard file* (written by the
caller, one per shop), trains locally from the global parameters it is sent, and sends back
parameters; raw rows never leave the shard. The server side is Flower's own strategies:

- ``"fedavg"``: :class:`flwr.serverapp.strategy.FedAvg` (McMahan et al. 2017), the average
  weighted by each shop's number of training examples;
- ``"fedprox"``: :class:`flwr.serverapp.strategy.FedProx` (Li et al. 2020), the same average;
  the shops add ``mu/2 * ||w - w_global||^2`` to their local loss (the strategy sends ``mu``);
- either, wrapped in :class:`~flwr.serverapp.strategy.DifferentialPrivacyServerSideFixedClipping`
  when ``dp_noise > 0`` (DP-FedAvg, McMahan et al. 2018): each shop's update is clipped to L2
  norm ``dp_clip`` and Gaussian noise of standard deviation ``dp_noise * dp_clip / shops`` is
  added to the average. The shops then report equal weights, as the noise calibration assumes.

The bytes communicated are counted on the messages themselves (the parameter arrays sent to and
received from the shops), not estimated.

A shop's local learner is any object with ``train(arrays, config) -> (arrays, n_examples)``
(:class:`LocalTrainer`), built in the client process by ``load_trainer(shard_path)``, which must
be a module-level function (it is pickled to the Ray workers).

Example:
    >>> # result = run_federated(["shop0.npz", "shop1.npz"], load_head_trainer, [w, b], rounds=10)
    >>> # result.arrays, result.bytes_down, result.bytes_up
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shoplm.errors import InputError

__all__ = ["STRATEGIES", "FederatedResult", "LocalTrainer", "dp_epsilon", "run_federated"]

STRATEGIES = ("fedavg", "fedprox")


def dp_epsilon(noise_multiplier: float, rounds: int, delta: float = 1e-5) -> float:
    """Shop-level ε (at ``delta``) of ``rounds`` rounds of DP-FedAvg with server-side fixed clipping.

    Flower adds noise of standard deviation ``z * C / n`` to the average of ``n`` updates clipped
    to norm ``C``; taking one shop's update away moves the average by at most ``C / n``, so each
    round is a Gaussian mechanism with ρ = 1 / (2 z²) zero-concentrated DP (Bun & Steinke 2016,
    Prop. 1.6), rounds add up (Lemma 1.7), and ρ-zCDP gives (ρ + 2 sqrt(ρ ln(1/δ)), δ)-DP
    (Prop. 1.3). No amplification by sampling: every shop takes part in every round. The
    guarantee protects a whole shop's data, not one customer's.

    Example:
        >>> round(dp_epsilon(1.0, 20), 1)
        31.5
    """
    if noise_multiplier <= 0:
        return float("inf")
    rho = rounds / (2.0 * noise_multiplier**2)
    return float(rho + 2.0 * np.sqrt(rho * np.log(1.0 / delta)))


class LocalTrainer(Protocol):
    """A shop's learner: local training from the global parameters."""

    def train(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int]:
        """Parameters after local training from ``arrays``, and the number of training examples."""
        ...


@dataclass
class FederatedResult:
    """The global parameters after the last round, and what the rounds cost.

    ``history`` holds one record per evaluated round (``round`` plus what ``evaluate`` returned);
    ``best_arrays`` are the parameters of the round with the highest ``select_metric`` (the last
    round's when no ``evaluate`` is given).
    """

    arrays: list[np.ndarray]
    best_arrays: list[np.ndarray]
    best_round: int
    rounds: int
    bytes_down: int
    bytes_up: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bytes_total(self) -> int:
        return self.bytes_down + self.bytes_up


def _payload_bytes(message: Any) -> int:
    """Bytes of the parameter arrays a Flower message carries (0 for an error reply)."""
    if not message.has_content():
        return 0
    return sum(len(array.data) for record in message.content.array_records.values() for array in record.values())


class _CountingGrid:
    """A Flower ``Grid`` that counts the parameter bytes of every message it sends and receives."""

    def __init__(self, grid: Any) -> None:
        self._grid = grid
        self.down = 0
        self.up = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> list[Any]:
        messages = list(messages)
        self.down += sum(_payload_bytes(m) for m in messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        self.up += sum(_payload_bytes(r) for r in replies)
        return replies


#: trainers already built in this (client) process, by shard path: a Ray actor serves many rounds
_TRAINERS: dict[str, LocalTrainer] = {}


def _client_app(shards: list[str], load_trainer: Callable[[str], LocalTrainer], threads: int) -> Any:
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        shard = shards[int(context.node_config["partition-id"])]
        if shard not in _TRAINERS:
            os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
            _TRAINERS[shard] = load_trainer(shard)
        arrays = msg.content["arrays"].to_numpy_ndarrays()
        config = dict(msg.content["config"])
        new, n_examples = _TRAINERS[shard].train(arrays, config)
        # DP noise is calibrated to a uniform average: then every shop weighs the same.
        weight = 1 if config.get("uniform-weights") else int(n_examples)
        metrics = MetricRecord({"num-examples": weight})
        return Message(RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}), reply_to=msg)

    return app


def run_federated(
    shards: Sequence[str | Path],
    load_trainer: Callable[[str], LocalTrainer],
    initial: Sequence[np.ndarray],
    *,
    rounds: int,
    strategy: str = "fedavg",
    proximal_mu: float = 0.0,
    dp_noise: float = 0.0,
    dp_clip: float | None = None,
    train_config: Mapping[str, int | float | str | bool] | None = None,
    evaluate: Callable[[int, list[np.ndarray]], Mapping[str, float]] | None = None,
    evaluate_every: int = 1,
    select_metric: str | None = None,
    num_cpus: int = 1,
    verbose: bool = False,
) -> FederatedResult:
    """Train ``initial`` parameters over ``rounds`` Flower rounds on the shops' shards.

    Args:
        shards: one file per shop; shop ``i`` reads only ``shards[i]`` (through ``load_trainer``).
        load_trainer: module-level function ``shard path -> LocalTrainer``, run in the client process.
        initial: the starting global parameters (float arrays; every shop starts from them).
        rounds: federated rounds (>= 1); every shop trains in every round.
        strategy: ``"fedavg"`` or ``"fedprox"``.
        proximal_mu: FedProx's ``mu`` (sent to the shops as ``proximal-mu``); ignored by FedAvg.
        dp_noise: Gaussian noise multiplier of DP-FedAvg (0: no DP); needs ``dp_clip``.
        dp_clip: L2 norm each shop's update is clipped to (DP only).
        train_config: extra settings sent to every shop each round (local epochs, learning rate...).
        evaluate: ``(round, arrays) -> metrics`` run on the server after rounds (the measurement of
            the simulation, e.g. each shop's validation score averaged).
        evaluate_every: evaluate every this many rounds (and after the last).
        select_metric: the metric of ``evaluate`` that picks ``best_arrays`` (higher is better).
        num_cpus: CPUs the local Ray cluster may use; each shop's training takes one.
        verbose: keep Flower's and Ray's INFO logs.

    Returns:
        :class:`FederatedResult`.

    Raises:
        InputError: an unknown strategy, fewer than 1 round or 2 shops, a negative or NaN DP noise
            or ``mu``, or DP noise without a positive clipping norm.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if rounds < 1:
        raise InputError(f"rounds must be at least 1, got {rounds}")
    if len(shards) < 2:
        raise InputError(f"federated training needs at least 2 shops, got {len(shards)}")
    if not (np.isfinite(dp_noise) and dp_noise >= 0):
        raise InputError(f"the DP noise multiplier must be a number >= 0, got {dp_noise}")
    if not (np.isfinite(proximal_mu) and proximal_mu >= 0):
        raise InputError(f"the proximal mu must be a number >= 0, got {proximal_mu}")
    if dp_noise > 0 and not (dp_clip is not None and np.isfinite(dp_clip) and dp_clip > 0):
        raise InputError(f"DP-FedAvg needs a positive clipping norm (--dp-clip), got {dp_clip}")

    from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, FedProx
    from flwr.simulation import run_simulation

    quiet = [(name, logging.getLogger(name).level) for name in ("flwr", "ray")]
    if not verbose:
        for name, _ in quiet:
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
    n_shops = len(shards)
    config: dict[str, Any] = dict(train_config or {})
    config["uniform-weights"] = dp_noise > 0
    common = {"fraction_evaluate": 0.0, "min_train_nodes": n_shops, "min_available_nodes": n_shops}
    base: Any = FedProx(proximal_mu=proximal_mu, **common) if strategy == "fedprox" else FedAvg(**common)
    if dp_noise > 0:
        base = DifferentialPrivacyServerSideFixedClipping(
            base, noise_multiplier=dp_noise, clipping_norm=float(dp_clip or 0.0), num_sampled_clients=n_shops
        )

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -np.inf, "round": rounds, "arrays": None}

    def server_evaluate(server_round: int, arrays: Any) -> Any:
        if evaluate is None or server_round == 0:
            return None
        if server_round % evaluate_every and server_round != rounds:
            return None
        params = arrays.to_numpy_ndarrays()
        metrics = {k: float(v) for k, v in evaluate(server_round, params).items()}
        history.append({"round": server_round, **metrics})
        score = metrics.get(select_metric, -np.inf) if select_metric else server_round
        if score > best["score"]:
            best.update(score=score, round=server_round, arrays=params)
        return MetricRecord(metrics)

    outcome: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        counting = _CountingGrid(grid)
        started = time.monotonic()
        result = base.start(
            grid=counting,
            initial_arrays=ArrayRecord([np.asarray(a) for a in initial]),
            num_rounds=rounds,
            train_config=ConfigRecord(config),
            evaluate_fn=server_evaluate if evaluate is not None else None,
        )
        outcome.update(
            arrays=result.arrays.to_numpy_ndarrays(),
            down=counting.down,
            up=counting.up,
            seconds=time.monotonic() - started,
        )

    init_args = {"num_cpus": num_cpus, "include_dashboard": False, "log_to_driver": verbose}
    if not verbose:
        init_args["logging_level"] = logging.WARNING
    try:
        run_simulation(
            server,
            _client_app([str(s) for s in shards], load_trainer, 1),
            num_supernodes=n_shops,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": init_args},
            verbose_logging=verbose,
        )
    finally:
        for name, level in quiet:
            logging.getLogger(name).setLevel(level)
    if "arrays" not in outcome:
        raise RuntimeError("the Flower simulation ended without a result (see the log above)")
    final = outcome["arrays"]
    return FederatedResult(
        arrays=final,
        best_arrays=best["arrays"] if best["arrays"] is not None else final,
        best_round=int(best["round"]),
        rounds=rounds,
        bytes_down=int(outcome["down"]),
        bytes_up=int(outcome["up"]),
        seconds=float(outcome["seconds"]),
        history=history,
    )

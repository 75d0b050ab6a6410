"""Federated training: several shops train one model without pooling raw data (Flower in simulation).

Pure logic, no SQL: clients hold their shop's own frames; only model parameters travel.

- :mod:`~shoplm.federated.splits`: non-IID splits of a data set into shops (Dirichlet skew by group);
- :mod:`~shoplm.federated.simulation`: :func:`run_federated`, Flower's FedAvg / FedProx (optionally
  DP-FedAvg) over shops that each read only their own shard file, counting the bytes sent.

The tasks (the intent head, the sequential recommender) and ``shoplm bench federated`` sit on the
application floor, :mod:`shoplm.app.federated`.
"""

from shoplm.federated.simulation import STRATEGIES, FederatedResult, LocalTrainer, dp_epsilon, run_federated
from shoplm.federated.splits import dirichlet_split, split_summary

__all__ = [
    "STRATEGIES",
    "FederatedResult",
    "LocalTrainer",
    "dirichlet_split",
    "dp_epsilon",
    "run_federated",
    "split_summary",
]

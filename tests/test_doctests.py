"""The examples in the docstrings of the core modules run as written (doctest).

Modules whose examples need a language model, a trained shop or a server are left out (their
examples are marked ``+SKIP`` or covered by the tests of their package).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "shoplm.config",
    "shoplm.errors",
    "shoplm.estimator",
    "shoplm.interactions",
    "shoplm.store.database",
    "shoplm.store.events",
    "shoplm.store.items",
    "shoplm.store.users",
    "shoplm.store.orders",
    "shoplm.store.conversations",
    "shoplm.store.api_keys",
    "shoplm.store.hashing",
    "shoplm.app.registry",
    "shoplm.app.keys",
    "shoplm.app.events",
    "shoplm.recommend.components",
    "shoplm.recommend.engine",
    "shoplm.recommend.catalog",
    "shoplm.recommend.rules",
    "shoplm.recommend.profiles",
    "shoplm.recommend.topk",
    "shoplm.recommend.answers",
    "shoplm.ingest.rows",
    "shoplm.ingest.pseudonymize",
    "shoplm.ingest.sequences",
    "shoplm.assistant.replies",
    "shoplm.assistant.state",
    "shoplm.assistant.tools",
    "shoplm.assistant.dialogue",
    "shoplm.serve.ratelimit",
    "shoplm.serve.metrics",
    "shoplm.lm.texts",
    "shoplm.lm.e5_file",
    "shoplm.lm.categories",
    "shoplm.fanout",
    "shoplm.itemsets",
    "shoplm.ingest.transactions",
    "shoplm.store.analytics",
    "shoplm.store.alerts",
    "shoplm.store.jobs",
    "shoplm.store.backup",
    "shoplm.app.scheduler",
    "shoplm.app.retention",
    "shoplm.store.privacy",
    "shoplm.privacy.mechanisms",
    "shoplm.privacy.reports",
    "shoplm.privacy.bench",
    "shoplm.app.reports",
    "shoplm.store.migrate",
    "shoplm.store.migrations",
    "shoplm.app.alerts",
    "shoplm.app.insights",
    "shoplm.app.analytics",
    "shoplm.customers.summary",
    "shoplm.customers.bgnbd",
    "shoplm.customers.churn_features",
    "shoplm.customers.churn",
    "shoplm.customers.value",
    "shoplm.forecast.panel",
    "shoplm.forecast.ensemble",
    "shoplm.forecast.coldstart",
    "shoplm.forecast.models",
    "shoplm.forecast.reorder",
    "shoplm.risk.features",
    "shoplm.risk.rules",
    "shoplm.risk.scorer",
    "shoplm.risk.bench",
    "shoplm.segments.api",
    "shoplm.segments.basket",
    "shoplm.segments.describe",
    "shoplm.segments.rfm",
    "shoplm.segments.profiles",
    "shoplm.recommend.bought_together",
    "shoplm.pricing.elasticity",
    "shoplm.federated.splits",
    "shoplm.app.federated.intent",
    "shoplm.app.federated.seqrec",
    "shoplm.app.federated.bench",
    "shoplm.lm.faithfulness",
    "shoplm.insight.replies",
    "shoplm.store.reviews",
    "shoplm.app.review_replies",
    "shoplm.insight.aspect_terms",
    "shoplm.marketing.experiments",
    "shoplm.store.experiments",
    "shoplm.app.experiments",
    "shoplm.serve.routers.dashboard_experiments",
    "shoplm.lm.generator",
    "shoplm.marketing.adcopy",
    "shoplm.marketing.adcopy_bench",
    "shoplm.marketing.bandits",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see output)"

"""Marketing: ad copy under checked constraints, click-through-rate models, creative bandits and
A/B tests of recommendation strategies.

Models and pure logic only (no SQL); the store-bound services live in :mod:`shoplm.app`.
"""

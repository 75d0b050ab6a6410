"""A deterministic demo store (catalog, users, events, orders, reviews, chats, policies) with ground truth.

Example:
    >>> from pathlib import Path
    >>> from shoplm.demo import DemoSizes, generate_demo_store
    >>> manifest = generate_demo_store(Path("/tmp/demo"), seed=0, sizes=DemoSizes(200, 300, 5_000))
    >>> manifest.files["events"].name
    'events.parquet'
"""

from shoplm.demo.generator import DEFAULT_END, DemoManifest, DemoSizes, generate_demo_store

__all__ = ["DEFAULT_END", "DemoManifest", "DemoSizes", "generate_demo_store"]

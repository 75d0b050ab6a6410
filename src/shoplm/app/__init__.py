"""The application floor: store-bound services and the jobs that tie the layers together.

- :mod:`~shoplm.app.jobs`: encode the catalog, train every registered recommender, describe, demo;
- :mod:`~shoplm.app.registry`: model versions on disk and the live pointer;
- :mod:`~shoplm.app.recommender`: the recommendation engine bound to the store (live histories,
  pseudonymous ids, new items, scheduled refresh);
- :mod:`~shoplm.app.assistant`: the customer-service assistant bound to the store (conversations,
  order changes);
- :mod:`~shoplm.app.keys`: API keys.

The domain packages below (``recommend``, ``assistant``) hold models and pure logic and never
import this floor; ``serve`` and ``cli`` sit on top of it.
"""

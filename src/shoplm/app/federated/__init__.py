"""Federated training of the shop's models: the tasks (:mod:`.intent`, :mod:`.seqrec`), the benchmark (:mod:`.bench`).

The Flower machinery and the shop splits are domain logic in :mod:`shoplm.federated`; the tasks
live on the application floor because they tie it to two other domains' models (the assistant's
intent head, the recommender's sequential network), which domains may not import from each other.
"""

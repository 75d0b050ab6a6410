"""Review insight: sentiment and a rating estimate per review, aspect opinions, opinion monitoring
(daily sentiment, spike alerts, complaint topics) and grounded reply drafts.

Models and pure logic only (no SQL); the store-bound jobs live in :mod:`shoplm.app`.
"""

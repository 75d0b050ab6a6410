"""Interest mining: RFM and embedding segments, and basket rules (FP-growth). Pure logic, no SQL.

- :mod:`~shoplm.segments.rfm`: :class:`RFMSegments` (quintile R, F, M scores, named segments);
- :mod:`~shoplm.segments.profiles`: :class:`ProfileSegments` (k-means on profile vectors);
- :mod:`~shoplm.segments.describe`: what each segment is (size, top categories, tags, value);
- :mod:`~shoplm.segments.basket`: :class:`BasketRules` (FP-growth, support, confidence, lift);
- :mod:`~shoplm.segments.api`: one call per question for the application floor.
"""

from shoplm.segments.api import METHODS, SegmentsResult, basket_rules_summary, segment_customers
from shoplm.segments.basket import BasketRules
from shoplm.segments.describe import describe_segments
from shoplm.segments.profiles import ProfileSegments
from shoplm.segments.rfm import RFM_SEGMENTS, RFMSegments, rfm_name

__all__ = [
    "METHODS",
    "RFM_SEGMENTS",
    "BasketRules",
    "ProfileSegments",
    "RFMSegments",
    "SegmentsResult",
    "basket_rules_summary",
    "describe_segments",
    "rfm_name",
    "segment_customers",
]

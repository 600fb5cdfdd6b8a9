"""Built-in transforms: ``validate`` (quarantine bad rows), ``dedup`` (repeated keys), ``features``
(indicators exact to TA-Lib), ``resample`` (to a coarser timeframe) and ``enrich`` (funding, open interest,
positioning and liquidations the sink holds, onto bars).

Each transform lives in its own module; polars is imported only when a transform runs, so listing
plugins stays fast.
"""

import etl

from .dedup import DedupTransform
from .enrich import EnrichTransform
from .features import FeaturesTransform
from .resample import ResampleTransform
from .validate import ValidateTransform


@etl.hookimpl
def register_transforms(register):
    for transform in (ValidateTransform, DedupTransform, FeaturesTransform, ResampleTransform, EnrichTransform):
        register(transform)

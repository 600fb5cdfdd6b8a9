"""The Crypto Fear & Greed index (alternative.me) as a market-etl source.

One reading a day, 0 (extreme fear) to 100 (extreme greed), since 2018-02-01, stored in the
``sentiment`` dataset this plugin registers: ``source, symbol, ts, value`` plus ``classification``
("Extreme Fear" ... "Extreme Greed"). The index covers the crypto market as a whole, so its only
symbol is ``crypto`` (the default when a pipeline lists none).
"""

import etl

from .source import SENTIMENT, FearGreedSource


@etl.hookimpl
def register_sources(register):
    register(FearGreedSource)


@etl.hookimpl
def register_datasets(register):
    register(SENTIMENT)

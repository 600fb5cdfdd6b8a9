"""Hyperliquid for market-etl: the REST API for recent history, the S3 archive for everything older.

``hyperliquid`` (``POST /info``)
    ``ohlcv`` from ``candleSnapshot`` at 1m 3m 5m 15m 30m 1h 2h 4h 8h 12h 1d 3d 1w (Hyperliquid's
    ``1M`` has no timeframe here), with ``trades`` (count) as an extra column; ``funding`` from
    ``fundingHistory`` with ``premium`` as an extra column, ``ts`` being the settlement time as sent
    (a few ms past the hour). Perps are named by coin (``BTC``, ``kPEPE``), spot pairs by pair name
    (``PURR/USDC``, ``@107``). The API keeps only the newest 5000 candles per coin and interval; older
    windows are reported by a warning naming the earliest candle still available. Requests are
    weighted as documented (20 each, plus 1 per 60 candles or per 20 funding rows returned) against a
    budget of ``weight_per_minute`` (1200) shared by every stream talking to the same host; 5xx, 429
    and timeouts are retried up to ``attempts`` (8) times, a 422 fails the stream at once. An unknown
    coin fails its stream by name. Options: ``base_url``, ``weight_per_minute``, ``attempts``.
    Live (``etl stream``): ``ohlcv`` from the websocket's ``candle`` subscriptions; a candle is stored when
    the next one begins (there is no closed flag; see ``live.py``); ``trades`` from ``trades`` subscriptions,
    live only (no trade history to heal from: the windows a connection missed are recorded gaps). ``ws_url``
    is the whole endpoint (default: ``base_url`` as ``ws://.../ws``, or ``wss://api.hyperliquid.xyz/ws``).

``hyperliquid_archive`` (``s3://hyperliquid-archive``, requester pays)
    ``l2_top``: per L2 book snapshot, ``ts`` (exchange time), ``bid_px``, ``bid_sz``, ``ask_px``,
    ``ask_sz`` (best level of each side), ``mid`` = (bid + ask) / 2 and ``spread`` = ask - bid; two
    snapshots with the same millisecond keep the later one, and a snapshot with an empty side (no top
    of book) is left out with a warning. ``ohlcv`` at any timeframe, built from those mids: open and
    close are the first and last mid of the bar, high and low its extremes, ``volume`` is null because
    the archive holds no trades, and ``snapshots`` counts the snapshots behind the bar (a bar thinned
    by a missing hour shows it). ``asset_ctxs``: per coin and minute, ``funding``, ``open_interest``
    (coins), ``mark_px``, ``oracle_px``, and the extras ``mid_px``, ``premium``, ``impact_bid_px``,
    ``impact_ask_px`` (null when the book is thin), ``prev_day_px``, ``day_ntl_vlm``. ``funding``
    (with ``premium``) and ``open_interest`` are those per-minute columns: the funding rate is the
    current one, not a settlement (the ``hyperliquid`` source has settlements).
    Credentials come from the usual AWS chain and the account pays the transfer; ``etl backfill
    --dry-run`` lists the objects, their sizes and the estimated cost first. Downloads are cached in
    ``cache_dir`` (default ``~/.cache/market-etl``) so nothing is paid twice. Hours missing from the
    archive are logged as gaps; hours not yet published (the archive is updated about monthly) are
    left for a later run; a corrupt object fails the stream at its hour, naming the key, and is not
    cached. Options: ``bucket``, ``endpoint_url`` (S3-compatible mirrors), ``region``, ``cache_dir``,
    ``transfer_cost_per_gb`` (0.09, AWS internet egress, for dry-run estimates).
"""

import etl

from .archive import HyperliquidArchiveSource
from .datasets import ASSET_CTXS, L2_TOP
from .rest import HyperliquidSource


@etl.hookimpl
def register_sources(register):
    register(HyperliquidSource)
    register(HyperliquidArchiveSource)


@etl.hookimpl
def register_datasets(register):
    register(L2_TOP)
    register(ASSET_CTXS)

"""The archive's symbols, for selectors (``symbols = { match = ["*USDT"], status = "all" }``).

The symbols are the folders of the dataset's daily data type in the bucket's S3 listing
(``data/futures/um/daily/klines/`` with ``delimiter=/``: one ``CommonPrefixes`` per symbol, every page), so
delisted symbols are there too: Binance keeps their files. A symbol is ``trading`` while the archive still
publishes it: a daily file for one of the last ``ENDED_AFTER`` days (after the day a file covers, it appears the
next morning); else ``delisted``. That takes one listing of the current month's daily files per symbol (two in the
first days of a month), made ``downloads`` at a time. The 24h quote volumes (``top``) come from the REST API's
tickers (``rest_url``); a symbol it no longer lists has none.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import etl
from etl.timeframes import DAY, from_ms, next_bar, now_ms, parse_time

from .layout import MARKETS, Folder, months
from .listing import NS, parse_page

if TYPE_CHECKING:
    from .source import BinanceArchiveSource

ENDED_AFTER = 3 * DAY  # no daily file for this long after the newest: the symbol's archive has ended


def data_type(dataset: str) -> str:
    from .metrics import DATASETS

    return "metrics" if dataset in DATASETS else "klines"


def list_symbols(source: BinanceArchiveSource, volumes: bool = False) -> list[etl.Listing]:
    """Every symbol folder of the dataset's daily files, with its status, and its 24h quote volume if asked."""
    market, kind = source.settings["market"], data_type(source.config.dataset)
    symbols = folders(source.archive().lists, f"data/{MARKETS[market]}/daily/{kind}/")
    with ThreadPoolExecutor(source.settings["downloads"], thread_name_prefix="binance-archive-listing") as pool:
        statuses = list(pool.map(lambda symbol: status(source, market, kind, symbol), symbols))
    ranked = {listing.symbol: listing.quote_volume
              for listing in source.rest.source().list_symbols(volumes=True)} if volumes else {}
    return [etl.Listing(symbol, state, ranked.get(symbol)) for symbol, state in zip(symbols, statuses, strict=True)]


def folders(client: Any, prefix: str) -> list[str]:
    """The names of the folders right under ``prefix`` (``CommonPrefixes``), through every page; the listing's
    echoed ``Prefix`` and the empty-named folder some symbols have (``BTCUSDT//``) are not names."""
    names: list[str] = []
    marker = ""
    while True:
        params = {"prefix": prefix, "delimiter": "/", **({"marker": marker} if marker else {})}
        response = client.request("GET", "/", params=params)
        _, marker = parse_page(response.content, response.url)
        root = ElementTree.fromstring(response.content)
        for item in root.iter(f"{NS}CommonPrefixes"):
            name = item.findtext(f"{NS}Prefix", "").removeprefix(prefix).strip("/")
            if name and "/" not in name:
                names.append(name)
        if not marker:
            return sorted(set(names))


def status(source: BinanceArchiveSource, market: str, kind: str, symbol: str) -> str:
    """``trading`` if a daily file of the last ``ENDED_AFTER`` days is listed, else ``delisted``."""
    now = now_ms()
    since = now - ENDED_AFTER - DAY
    for month in months(since, now):
        for key in source.archive().listing(daily_prefix(market, kind, symbol, month)):
            if key.endswith(".zip") and _day(key) >= since:
                return "trading"
    return "delisted"


def daily_prefix(market: str, kind: str, symbol: str, month: int) -> str:
    """The prefix of one month's daily files: the ``1d`` klines (the smallest), or the metrics."""
    folder = f"data/{MARKETS[market]}/daily/{kind}/{symbol}/"
    name = f"{symbol}-metrics" if kind == "metrics" else f"1d/{symbol}-1d"
    return f"{folder}{name}-{from_ms(month):%Y-%m}-"


def _day(key: str) -> int:
    return parse_time(key.removesuffix(".zip")[-10:])


def klines_end(source: BinanceArchiveSource, folder: Folder, monthly: dict[str, int], end: int) -> int | None:
    """Where a delisted symbol's klines end (its newest file's period), so a run over its history asks the REST
    API for nothing after it; None while the archive publishes the symbol (or for 1w and 1M, monthly only), and
    without a listing when the monthly files cover the window."""
    ends = [next_bar(folder.period_start(key), "1M") for key in monthly if key.endswith(".zip")]
    if not folder.has_daily or end <= max(ends, default=0):
        return None
    now = now_ms()
    since = now - ENDED_AFTER - DAY
    recent = [key for month in months(since, now) for key in source.archive().listing(folder.daily_prefix(month))]
    if any(key.endswith(".zip") and folder.period_start(key) >= since for key in recent):
        return None
    after = max(ends, default=0)
    daily = source.archive().listing(folder.daily_prefix(after)) if after else {}
    ends += [folder.period_start(key) + DAY for key in daily if key.endswith(".zip")]
    newest = max(ends, default=None)
    return newest if newest is not None and ended(source, folder.symbol, newest) else None


def ended(source: BinanceArchiveSource, symbol: str, newest_end: int) -> bool:
    """Whether the archive's files of ``symbol`` stop at ``newest_end`` for good: none for ``ENDED_AFTER`` since,
    and the REST API (asked only when healing from it is on) does not trade it. An archive that merely stalls
    (binance-public-data issue 411) on a symbol REST still trades is not an end: REST fills in."""
    if newest_end + ENDED_AFTER >= now_ms():
        return False
    if not source.settings["heal"]:
        return True
    listed = {listing.symbol: listing.status for listing in source.rest.source().list_symbols()}
    return listed.get(symbol) != "trading"

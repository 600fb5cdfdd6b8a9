"""A day file of public.bybit.com read as trades: the recorded sample rows (copies of
``../shared/wire-samples/bybit_public_trading_*``) give exactly the values a live trade carries, and every
check that makes a file unusable is provoked."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from etl_bybit.archive_trades import read_day
from etl_bybit.public import Unusable

from etl.timeframes import DAY, parse_time

SAMPLES = Path(__file__).parents[2] / "fixtures" / "bybit_public"


def sample(name):
    return (SAMPLES / f"bybit_public_trading_{name}.sample.csv").read_text()


def read(text, symbol, date):
    day = parse_time(date)
    return read_day(gzip.compress(text.encode()), f"{symbol}{date}.csv.gz", symbol, day, day + DAY)


@pytest.mark.parametrize(("name", "symbol", "date", "row"), [
    ("linear", "ATOMUSDT", "2025-09-02",
     (1756771201598, "5e580a5e-b412-5c7b-bb94-edef31ee0d0c", 4.393, 0.1, "buy")),
    ("inverse", "BTCUSD", "2026-09-01",
     (1788220801092, "e94f18f9-4bc4-5530-87ee-d067f8267a62", 78513.0, 79.0, "sell")),
    ("delivery_norpi", "BTC-14MAR25", "2025-03-14",
     (1741910443735, "26bb8b97-1991-503f-b2c2-f4e8d0b94721", 81095.0, 0.001, "buy")),
])
def test_recorded_rows_read_as_live_trades(name, symbol, date, row):
    frame = read(sample(name), symbol, date)

    assert frame.columns == ["ts", "trade_id", "price", "size", "side"]
    assert frame.rows() == [row], "ts cut (not rounded) to the ms; side lower case; trdMatchID the id"


LINE = "1756771201.5983,ATOMUSDT,Buy,0.1,4.393,PlusTick,5e580a5e-b412-5c7b-bb94-edef31ee0d0c,4.393e+07,0.1,0.4393,0"


@pytest.mark.parametrize(("text", "problem"), [
    (sample("linear").replace("trdMatchID", "matchId"), "unreadable CSV"),
    (sample("linear") + LINE.replace("ATOMUSDT", "BTCUSDT") + "\n", "1 rows of another symbol"),
    (sample("linear") + LINE.replace("Buy", "Hold") + "\n", "1 sides other than Buy and Sell"),
    (sample("linear") + LINE.replace("1756771201.5983", "1756857601.5") + "\n", "1 times outside its day"),
    (sample("linear") + LINE.replace(",4.393,", ",,") + "\n", "empty values: {'price': 1}"),
    (sample("linear") + LINE.replace(",4.393,", ",four,") + "\n", "unreadable CSV"),
    (sample("linear") + LINE.replace("1756771201.5983", "1756771201.59x") + "\n", "unreadable CSV"),
])
def test_a_file_that_does_not_read_whole_is_unusable(text, problem):
    with pytest.raises(Unusable) as raised:
        read(text, "ATOMUSDT", "2025-09-02")

    assert raised.value.reason == "corrupt"
    assert str(raised.value).startswith("ATOMUSDT2025-09-02.csv.gz: ") and problem in str(raised.value)


def test_a_body_that_is_not_gzip_is_unusable():
    with pytest.raises(Unusable, match="does not inflate: BadGzipFile"):
        read_day(b"<html>404</html>", "X.csv.gz", "X", 0, DAY)

"""``open_interest`` and ``positioning`` from the archive's daily ``metrics`` files, through the real CLI into
DuckDB: the rows equal what the ``binance`` REST source stores for the same window (the oracle), a file the
archive lacks is healed from REST within its 30 days and is a recorded gap before them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from archive_support import FIRST, NOW, log_events

from etl.testing import SourceConformance
from etl.timeframes import DAY, HOUR, MINUTE, floor_ts, from_ms, iso
from fixtures.fake_vision_metrics import FakeVisionMetrics

TODAY = floor_ts(NOW, "1d")
STEP = 5 * MINUTE
COMMON = {"open_interest": ("ts", "open_interest", "open_interest_value"),
          "positioning": ("ts", "timeframe", "long_short_ratio", "long_account", "short_account",
                          "top_long_short_account_ratio", "top_long_short_position_ratio", "taker_buy_sell_ratio")}


@pytest.fixture
def vision() -> Iterator[FakeVisionMetrics]:
    with FakeVisionMetrics(first_month=f"{from_ms(FIRST):%Y-%m}") as fake:
        yield fake


def metrics_name(day: int, symbol: str = "BTCUSDT") -> str:
    return f"{symbol}-metrics-{from_ms(day):%Y-%m-%d}.zip"


def source_keys(dataset: str) -> dict[str, Any]:
    return {"dataset": dataset, "market": "usdm", "timeframes": ["5m"] if dataset == "positioning" else None}


def stored(project, dataset: str, columns: tuple[str, ...], symbol: str = "BTCUSDT") -> list[tuple[Any, ...]]:
    selected = ", ".join("epoch_ms(ts)" if column == "ts" else column for column in columns)
    with duckdb.connect(str(project.folder / "market.duckdb"), read_only=True) as connection:
        return connection.execute(f"SELECT {selected} FROM {dataset} WHERE symbol = ? ORDER BY ts", [symbol]).fetchall()


def gaps(project) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(project.folder / ".etl" / "ledger.db") as connection:
        return connection.execute('SELECT stream, start, "end", bars FROM gaps ORDER BY start').fetchall()


@pytest.mark.parametrize("dataset", ["open_interest", "positioning"])
def test_metrics_files_land_the_rest_sources_rows(project, vision, rest, dataset):
    start, end = TODAY - 6 * DAY, TODAY - 2 * DAY
    vision.fault(metrics_name(start + DAY), "repeated")
    archive = project(**source_keys(dataset))

    result = archive.backfill(start, end)

    assert result.exit_code == 0, result
    assert not [r for r in rest.requests if r.path.startswith("/futures/data/")], "all from the archive"
    period = {"period": "5m"} if dataset == "open_interest" else {}
    same = project("rest", plugin="binance", base_url=rest.url, rest_url=None, cache_dir=None, **source_keys(dataset),
                   **period)
    assert same.backfill(start, end).exit_code == 0
    rows = stored(archive, dataset, COMMON[dataset])
    assert len(rows) == 4 * 288 and rows[0][0] == start and rows[-1][0] == end - STEP
    assert rows == stored(same, dataset, COMMON[dataset]), "every field REST has too, equal sample for sample"
    counters = archive.ledger_counters()
    assert counters[f"{dataset}/BTCUSDT" + ("/5m" if dataset == "positioning" else "")]["repeated_rows_dropped"] == 288
    assert {row[0] for row in stored(archive, dataset, ("source",))} == {"binance"}


def test_positioning_from_the_archive_has_no_taker_volumes(project, vision, rest):
    archive = project(**source_keys("positioning"))

    assert archive.backfill(TODAY - 3 * DAY, TODAY - 2 * DAY).exit_code == 0

    with duckdb.connect(str(archive.folder / "market.duckdb"), read_only=True) as connection:
        columns = [row[0] for row in connection.execute("DESCRIBE positioning").fetchall()]
    assert "taker_buy_volume" not in columns and "taker_buy_sell_ratio" in columns
    ratio, long, short = stored(archive, "positioning", ("long_short_ratio", "long_account", "short_account"))[0]
    assert long == round(ratio / (1 + ratio), 4) and short == round(1 / (1 + ratio), 4)


@pytest.mark.parametrize("fault", ["missing", "bad_checksum", "truncated"])
def test_a_file_missing_or_bad_within_the_rest_apis_30_days_is_healed_from_it(project, vision, rest, fault):
    start, end = TODAY - 5 * DAY, TODAY - 2 * DAY
    bad = start + DAY
    vision.fault(metrics_name(bad), fault)
    archive = project(**source_keys("positioning"))

    result = archive.backfill(start, end)

    assert result.exit_code == 0, result
    rows = stored(archive, "positioning", ("ts", "long_short_ratio", "taker_buy_volume"))
    assert [row[:2] for row in rows] == [row[:2] for row in rest.expected_positioning("BTCUSDT", "5m", start, end)]
    healed = [row for row in rows if row[2] is not None]
    assert [row[0] for row in healed] == list(range(bad + STEP, bad + DAY + STEP, STEP)), "the file's samples"
    counters = archive.ledger_counters()["positioning/BTCUSDT/5m"]
    assert counters["healed_rows"] == 288
    assert ("archive_files_unusable" in counters) == (fault != "missing")
    assert not gaps(archive)


@pytest.mark.parametrize("dataset", ["open_interest", "positioning"])
def test_a_file_missing_before_the_rest_apis_30_days_is_a_recorded_gap(project, vision, rest, dataset):
    start = TODAY - 40 * DAY
    lost = start + DAY
    vision.fault(metrics_name(lost), "missing")
    archive = project(**source_keys(dataset))

    result = archive.backfill(start, start + 3 * DAY)

    assert result.exit_code == 0, result
    times = [row[0] for row in stored(archive, dataset, ("ts",))]
    assert len(times) == 2 * 288 and lost + STEP not in times
    [warning] = log_events(result, "binance archive metrics beyond the REST API's 30 days, left as a gap")
    assert warning["url"].endswith(metrics_name(lost))
    stream = "positioning/BTCUSDT/5m" if dataset == "positioning" else "open_interest/BTCUSDT"
    assert archive.ledger_counters()[stream]["archive_files_missing"] == 1
    assert gaps(archive) == [(stream, iso(lost + STEP), iso(lost + DAY + STEP), 288)]
    assert not [r for r in rest.requests if r.path.startswith("/futures/data/")], "REST has nothing that old"


@pytest.mark.parametrize(("keys", "said"), [
    ({"market": "spot"}, "binance_archive dataset 'positioning' comes from the USD-M metrics files: set market = "
                         "'usdm' (it is 'spot')"),
    ({"timeframes": ["1h"]}, "binance_archive positioning is the metrics files' 5-minute samples: timeframes = "
                             "['5m'], not ['1h']"),
])
def test_metrics_for_another_market_or_timeframe_are_a_configuration_error(project, vision, keys, said):
    archive = project(**{**source_keys("positioning"), **keys})

    result = archive.backfill(TODAY - 3 * DAY, TODAY - 2 * DAY)

    assert result.exit_code == 2
    assert said in result.stderr


def test_files_stamped_from_midnight_give_the_same_samples_once(project, vision, rest):
    start, end = TODAY - 6 * DAY, TODAY - 2 * DAY
    for day in range(start - DAY, end, DAY):
        vision.fault(metrics_name(day), "from_midnight")
    archive = project(**source_keys("positioning"))

    result = archive.backfill(start, end)

    assert result.exit_code == 0, result
    rows = stored(archive, "positioning", ("ts", "long_short_ratio", "top_long_short_account_ratio"))
    assert rows == [row[:2] + row[4:5] for row in rest.expected_positioning("BTCUSDT", "5m", start, end)]
    assert not gaps(archive) and not rest.requests_to("/futures/data/globalLongShortAccountRatio")


def test_without_heal_a_missing_file_within_30_days_is_a_gap_and_rest_is_not_asked(project, vision, rest):
    start = TODAY - 5 * DAY
    vision.fault(metrics_name(start + DAY), "missing")
    archive = project(heal=False, **source_keys("open_interest"))

    result = archive.backfill(start, start + 3 * DAY)

    assert result.exit_code == 0, result
    assert len(stored(archive, "open_interest", ("ts",))) == 2 * 288
    assert archive.ledger_counters()["open_interest/BTCUSDT"]["archive_files_missing"] == 1
    [warning] = log_events(result, "binance archive file missing, left as a gap")
    assert warning["url"].endswith(metrics_name(start + DAY))
    assert gaps(archive) == [("open_interest/BTCUSDT", iso(start + DAY + STEP), iso(start + 2 * DAY + STEP), 288)]
    assert not rest.requests


def test_a_symbol_without_metrics_fails_its_stream_with_the_folder_named(project, vision, rest):
    archive = project(symbols=["BTCUSDT", "DOGEUSDT"], **source_keys("positioning"))

    result = archive.backfill(TODAY - 3 * DAY, TODAY - 2 * DAY)

    assert result.exit_code == 1
    assert ("FAILED history positioning/DOGEUSDT/5m: binance_archive: no metrics files for 'DOGEUSDT' in the usdm "
            f"archive ({vision.url}/data/futures/um/daily/metrics/DOGEUSDT/)") in result.stdout
    assert len(stored(archive, "positioning", ("ts",))) == 288


def test_a_dry_run_lists_the_metrics_files_and_what_rest_would_fill(project, vision, rest):
    start = TODAY - 4 * DAY
    vision.fault(metrics_name(start + DAY), "missing")
    archive = project(**source_keys("positioning"))

    result = archive.backfill(start, start + 3 * DAY, "--dry-run")

    assert result.exit_code == 0, result
    listed = [line.split()[0].rsplit("/", 1)[-1] for line in result.stdout.splitlines()
              if line.strip().startswith("http")]
    assert listed == [metrics_name(start - DAY), metrics_name(start), metrics_name(start + 2 * DAY)]
    assert f"missing from the archive ({metrics_name(start + DAY)})" in result.stdout
    assert not vision.downloads and not rest.requests


class TestArchivePositioningConforms(SourceConformance):
    plugin, dataset = "binance_archive", "positioning"
    symbols, timeframes = ("BTCUSDT",), ("5m",)
    start, end = iso(TODAY - 4 * DAY + 3 * HOUR), iso(TODAY - 2 * DAY)
    unknown_symbol = "NOPEUSDT"

    @pytest.fixture
    def source_server(self, vision):
        return vision.server

    @pytest.fixture
    def plugin_options(self, rest, tmp_path) -> dict[str, Any]:
        return {"market": "usdm", "rest_url": rest.url, "cache_dir": str(tmp_path / "cache"), "timeout": 2.0}

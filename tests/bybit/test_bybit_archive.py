"""The ``bybit_archive`` source (public.bybit.com's daily trade files) through the CLI into DuckDB, against the
fake archive: the trades landed, faults, gaps, the cache, and the dry run."""

from __future__ import annotations

import pytest
from bybit_support import ARCHIVE_FIRST, log_events, make_project

from etl.testing import run_cli
from etl.timeframes import DAY, from_ms
from fixtures.fake_bybit_public import FakeBybitPublic, file_name

COLUMNS = ("ts", "trade_id", "price", "size", "side")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BTCUSD")
START, END = ARCHIVE_FIRST, ARCHIVE_FIRST + 5 * DAY  # five finished days, the last one two days ago


@pytest.fixture
def project(tmp_path, public):
    """``project(folder, pipeline_keys, **source_keys)``: a pipeline of the archive source against the fake."""

    def make(folder="project", pipeline_keys=None, **keys):
        source = {"plugin": "bybit_archive", "dataset": "trades", "symbols": ["BTCUSDT"], "base_url": public.url,
                  "cache_dir": str(tmp_path / "cache"), "timeout": 2.0, **keys}
        return make_project(tmp_path / folder, source, **(pipeline_keys or {}))

    return make


def day(index):
    return ARCHIVE_FIRST + index * DAY


def test_every_trade_of_every_day_lands_once_as_bybit(project, public):
    archive = project(symbols=list(SYMBOLS), downloads=2, pipeline_keys={"batch_rows": 100})

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    for symbol in SYMBOLS:
        assert archive.rows("trades", symbol, COLUMNS) == public.expected_trades(symbol, START, END)
    assert archive.count("trades") == 3 * 5 * public.trades_per_day
    assert archive.sources("trades") == {"bybit"}, "stored as Bybit's own trades, to mix with live ones"
    assert set(public.downloads.values()) == {1} and len(public.downloads) == 15
    assert public.most_in_flight <= 2


def test_a_window_inside_days_keeps_only_its_trades_and_millisecond_cuts(project, public):
    archive = project()
    start, end = day(1) + 3 * 3_600_000 + 123, day(3) - 1

    assert archive.backfill(start, end).exit_code == 0

    stored = archive.rows("trades", "BTCUSDT", COLUMNS)
    assert stored == public.expected_trades("BTCUSDT", start, end)
    assert [file_name("BTCUSDT", day(1)), file_name("BTCUSDT", day(2))] == sorted(public.downloads)
    whole = [trade["timestamp"] for trade in public.trades("BTCUSDT", day(1)) if "." not in trade["timestamp"]]
    assert whole and int(whole[-1]) * 1000 in {row[0] for row in stored}, "a stamp without decimals"


def test_a_file_cut_once_is_downloaded_again(project, public, tmp_path):
    name = file_name("BTCUSDT", day(2))
    public.fault(name, "truncated_once")
    archive = project()

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == public.expected_trades("BTCUSDT", START, END)
    assert public.downloads[name] == 2
    [warning] = log_events(result, "bybit archive file unusable, downloading it again")
    assert name in warning["url"] and "where the directory page lists" in warning["reason"]
    assert not archive.ledger_gaps()


@pytest.mark.parametrize("fault", ["truncated", "damaged"])
def test_a_file_broken_upstream_is_a_recorded_gap(project, public, fault):
    name = file_name("BTCUSDT", day(1))
    public.fault(name, fault)
    archive = project()

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    expected = [row for row in public.expected_trades("BTCUSDT", START, END) if not day(1) <= row[0] < day(2)]
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == expected
    assert public.downloads[name] == 2, "downloaded once more before giving up"
    assert archive.ledger_gaps() == [("trades/BTCUSDT", from_ms(day(1)).isoformat().replace("+00:00", "Z"),
                                      from_ms(day(2)).isoformat().replace("+00:00", "Z"))]
    assert archive.ledger_counters()["trades/BTCUSDT"]["archive_files_unusable"] == 1
    [warning] = log_events(result, "bybit archive file unusable, left as a gap")
    assert name in warning["url"]
    assert ("where the directory page lists" if fault == "truncated" else "does not inflate") in warning["reason"]
    assert not (archive.folder.parent / "cache" / "bybit-public" / "trading" / "BTCUSDT" / name).exists()


def test_a_missing_day_is_a_recorded_gap_and_heal_fills_it_once_published(project, public):
    expected = public.expected_trades("BTCUSDT", START, END)
    name = file_name("BTCUSDT", day(3))
    public.fault(name, "missing")
    archive = project()

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == [row for row in expected if not day(3) <= row[0] < day(4)]
    assert [gap[1:] for gap in archive.ledger_gaps()] == [(_iso(day(3)), _iso(day(4)))]
    assert archive.ledger_counters()["trades/BTCUSDT"]["archive_files_missing"] == 1
    assert name not in public.downloads
    status = run_cli("status", str(archive.path), "--gaps")
    assert "trades/BTCUSDT" in status.stdout and _iso(day(3)) in status.stdout

    public.faults.clear()
    healed = run_cli("heal", str(archive.path))

    assert healed.exit_code == 0, healed
    assert "gaps filled: 1" in healed.summary
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == expected
    assert public.downloads[name] == 1 and set(public.downloads.values()) == {1}, "heal read that day alone"


def test_a_listed_file_answering_404_is_a_recorded_gap_without_a_second_try(project, public):
    name = file_name("BTCUSDT", day(4))
    public.fault(name, "gone")
    archive = project()

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert [gap[1:] for gap in archive.ledger_gaps()] == [(_iso(day(4)), _iso(day(5)))]
    assert archive.ledger_counters()["trades/BTCUSDT"]["archive_files_missing"] == 1
    [warning] = log_events(result, "bybit archive file unusable, left as a gap")
    assert "HTTP 404" in warning["reason"] and name in warning["url"]
    assert not log_events(result, "bybit archive file unusable, downloading it again")


def test_a_day_still_missing_when_healed_is_confirmed(project, public):
    public.fault(file_name("BTCUSDT", day(2)), "missing")
    archive = project()
    assert archive.backfill(START, END).exit_code == 0

    healed = run_cli("heal", str(archive.path))

    assert healed.exit_code == 0, healed
    assert "gaps confirmed: 1" in healed.summary
    assert "No open gaps." in run_cli("heal", str(archive.path)).stdout


def test_a_file_out_of_time_order_is_sorted_and_counted(project, public):
    public.fault(file_name("BTCUSDT", day(2)), "shuffled")
    archive = project(pipeline_keys={"batch_rows": 50})

    result = archive.backfill(START, END)

    assert result.exit_code == 0, result
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == public.expected_trades("BTCUSDT", START, END)
    assert archive.ledger_counters()["trades/BTCUSDT"]["archive_files_reordered"] == 1


def test_directory_pages_without_sizes_still_list_and_check_files(tmp_path):
    with FakeBybitPublic(first_day=_iso(ARCHIVE_FIRST)[:10], sizes=False) as bare:
        bare.fault(file_name("BTCUSDT", day(1)), "truncated")
        source = {"plugin": "bybit_archive", "dataset": "trades", "symbols": ["BTCUSDT"], "base_url": bare.url,
                  "cache_dir": str(tmp_path / "cache")}
        archive = make_project(tmp_path / "bare", source)

        plan = archive.backfill(START, day(3), "--dry-run")
        result = archive.backfill(START, day(3))

    assert plan.exit_code == 0, plan
    assert plan.stdout.count("size unknown") == 3
    assert "to download: 3 files, 0 B (0 bytes; 3 of unknown size)" in plan.stdout
    assert result.exit_code == 0, result
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == [
        row for row in bare.expected_trades("BTCUSDT", START, day(3)) if not day(1) <= row[0] < day(2)]
    [warning] = log_events(result, "bybit archive file unusable, left as a gap")
    assert "does not inflate" in warning["reason"], "without a listed size, gzip's own check catches the cut"


def test_an_unknown_symbol_fails_only_its_stream(project, public):
    archive = project(symbols=["BTCUSDT", "NOPEUSDT"])

    result = archive.backfill(START, END)

    assert result.exit_code == 1, result
    assert "trades/NOPEUSDT" in result.output and "no folder for 'NOPEUSDT'" in result.output
    assert archive.rows("trades", "BTCUSDT", COLUMNS) == public.expected_trades("BTCUSDT", START, END)


def test_the_cache_serves_a_second_project_and_keeps_to_its_cap(project, public):
    size = len(public.file_bytes("BTCUSDT", day(0)))
    first = project("first")
    assert first.backfill(START, END).exit_code == 0
    second = project("second")
    assert second.backfill(START, END).exit_code == 0
    assert set(public.downloads.values()) == {1}, "the second project read every file from the cache"
    assert second.rows("trades", "BTCUSDT", COLUMNS) == public.expected_trades("BTCUSDT", START, END)

    capped = project("capped", cache_dir=str(first.folder / "small-cache"), cache_max_mb=2.5 * size / 2**20)
    assert capped.backfill(START, END).exit_code == 0
    kept = list((first.folder / "small-cache" / "bybit-public").rglob("*.csv.gz"))
    assert len(kept) == 2, "the cap keeps the two files read last"


def test_dry_run_lists_files_bytes_and_absent_days_and_downloads_nothing(project, public):
    public.fault(file_name("BTCUSDT", day(2)), "missing")
    public.fault(file_name("BTCUSDT", day(5)), "missing")  # yesterday's file, not published yet
    archive = project()
    assert archive.backfill(START, day(1)).exit_code == 0  # day 0 is cached now
    downloads = dict(public.downloads)

    result = archive.backfill(START, day(6), "--dry-run")

    assert result.exit_code == 0, result
    sizes = {index: len(public.file_bytes("BTCUSDT", day(index))) for index in (0, 1, 3, 4)}
    url = f"{public.url}/trading/BTCUSDT/"
    plan = [
        f"trades/BTCUSDT: {_iso(START)} .. {_iso(day(6))} from {public.url}",
        f"  {url}{file_name('BTCUSDT', day(0))}  {_human(sizes[0])}  (cached)",
        f"  {url}{file_name('BTCUSDT', day(1))}  {_human(sizes[1])}",
        f"  {_iso(day(2))[:10]}: missing from the archive: a gap ({file_name('BTCUSDT', day(2))})",
        f"  {url}{file_name('BTCUSDT', day(3))}  {_human(sizes[3])}",
        f"  {url}{file_name('BTCUSDT', day(4))}  {_human(sizes[4])}",
        f"  {_iso(day(5))[:10]}: not in the archive yet ({file_name('BTCUSDT', day(5))})",
    ]
    fresh = sum(sizes.values()) - sizes[0]
    total = (f"  4 files, {_human(sum(sizes.values()))}; to download: 3 files, {_human(fresh)} ({fresh:,} bytes); "
             "2 days absent")
    lines = result.stdout.splitlines()
    assert lines[:len(plan) + 1] == [*plan, total]
    assert public.downloads == downloads, "a dry run downloads nothing"


def _iso(ms):
    from etl.timeframes import iso

    return iso(ms)


def _human(size):
    from etl.cache import human_size

    return human_size(size)

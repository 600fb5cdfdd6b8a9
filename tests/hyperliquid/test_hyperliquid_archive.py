"""The ``hyperliquid_archive`` source against moto's S3 server holding LZ4 objects in the real line formats.

Expected rows are computed here with ``json``/``csv`` and Python floats, independently of the source's
own parsing, from the very lines that were compressed into the bucket.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hyperliquid_helpers import DAY0, Archive, archive_objects, etl, log_events, pipeline_file, pipelines_file, stored

from etl.timeframes import DAY, HOUR, MINUTE, timeframe_ms
from fixtures.fake_hyperliquid_archive import asset_ctx_rows, asset_ctxs_key, compress, seed_bucket
from fixtures.s3_server import S3Fault, S3Server, start_s3_server

WINDOW = {"start": "2023-06-01", "end": "2023-06-02"}


def l2_keys(lines: dict[str, list[str]], coin: str) -> list[str]:
    """The coin's l2Book keys in hour order (file order matters: the later of two equal timestamps wins)."""
    keys = [key for key in lines if key.startswith("market_data/") and key.endswith(f"/{coin}.lz4")]
    return sorted(keys, key=lambda key: (key.split("/")[1], int(key.split("/")[2])))


def expected_top(lines: dict[str, list[str]], coin: str, start: int, end: int) -> pl.DataFrame:
    best: dict[int, tuple[float, float, float, float]] = {}
    for key in l2_keys(lines, coin):
        for line in lines[key]:
            raw = json.loads(line)["raw"]
            if raw["channel"] != "l2Book":
                continue
            bids, asks = raw["data"]["levels"]
            if bids and asks and start <= raw["data"]["time"] < end:
                best[raw["data"]["time"]] = (float(bids[0]["px"]), float(bids[0]["sz"]),
                                             float(asks[0]["px"]), float(asks[0]["sz"]))
    ts = sorted(best)
    frame = pl.DataFrame({"ts": ts, **{name: [best[t][i] for t in ts] for i, name in
                                       enumerate(("bid_px", "bid_sz", "ask_px", "ask_sz"))}})
    return frame.with_columns(mid=(pl.col("bid_px") + pl.col("ask_px")) / 2, spread=pl.col("ask_px") - pl.col("bid_px"))


def expected_bars(top: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    step = timeframe_ms(timeframe)
    bars: dict[int, list[float]] = {}
    for ts, mid in top.select("ts", "mid").iter_rows():
        bars.setdefault(ts // step * step, []).append(mid)
    return pl.DataFrame({
        "ts": list(bars), "open": [m[0] for m in bars.values()], "high": [max(m) for m in bars.values()],
        "low": [min(m) for m in bars.values()], "close": [m[-1] for m in bars.values()],
        "snapshots": [len(m) for m in bars.values()],
    })


def landed_top(folder: Path, coin: str) -> pl.DataFrame:
    rows = stored(folder, "l2_top").filter(pl.col("symbol") == coin)
    return rows.select(pl.col("ts").dt.epoch("ms"), "bid_px", "bid_sz", "ask_px", "ask_sz", "mid", "spread")


def object_gets(s3: S3Server, bucket: str) -> int:
    """Successful downloads of objects (listings are GETs of the bucket itself, not counted)."""
    return s3.count("GET", f"/{bucket}/", status=200)


def test_a_day_of_two_coins_lands_exact_l2_top_rows_and_mid_candles(
    tmp_path: Path, s3: S3Server, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    before = object_gets(s3, archive_day.bucket)
    path = pipeline_file(tmp_path, {**archive_source, "dataset": "l2_top", "symbols": ["ETH", "BTC"], **WINDOW})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    for coin in ("ETH", "BTC"):
        expected = expected_top(archive_day.lines, coin, DAY0, DAY0 + DAY)
        assert landed_top(tmp_path, coin).equals(expected), coin
    (gap,) = log_events(run, "hyperliquid archive hours missing (gap)")
    assert gap["first_key"] == "market_data/20230601/5/l2Book/ETH.lz4" and gap["hours"] == 1
    (one_sided,) = log_events(run, "hyperliquid archive snapshots with an empty book side left out")
    assert one_sided["key"] == "market_data/20230601/7/l2Book/BTC.lz4" and one_sided["snapshots"] == 1
    downloads = object_gets(s3, archive_day.bucket) - before
    assert downloads == 49, "24 hours of 2 coins, less the missing one, plus each coin's next hour"
    for counter in ("archive hours missing: 1", "one sided snapshots dropped: 1", "duplicates dropped: 47"):
        assert counter in run.summary, run.summary  # one pair sharing a millisecond per file of the day

    bars = tmp_path / "bars"
    path = pipeline_file(bars, {**archive_source, "dataset": "ohlcv", "symbols": ["ETH", "BTC"],
                                "timeframes": ["5m", "1h", "90m", "1d"], **WINDOW})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    assert object_gets(s3, archive_day.bucket) - before == downloads, "the cache prevents a second download"
    candles = stored(bars, "ohlcv")
    assert candles["volume"].null_count() == candles.height, "no trades in the archive: volume is null"
    for coin in ("ETH", "BTC"):
        top = expected_top(archive_day.lines, coin, DAY0, DAY0 + DAY)
        for timeframe in ("5m", "1h", "90m", "1d"):
            landed = candles.filter((pl.col("symbol") == coin) & (pl.col("timeframe") == timeframe)).select(
                pl.col("ts").dt.epoch("ms"), "open", "high", "low", "close", "snapshots")
            assert landed.equals(expected_bars(top, timeframe)), (coin, timeframe)


def truncated(lines: list[str]) -> bytes:
    whole = compress(lines)
    return whole[: len(whole) // 2]


def line_cut_short(lines: list[str]) -> bytes:
    return compress([*lines[:10], lines[10][:300], *lines[11:]])


def price_not_a_number(lines: list[str]) -> bytes:
    return compress([*lines[:20], lines[20].replace('"px":"', '"px":"x', 1), *lines[21:]])


def empty(lines: list[str]) -> bytes:
    return b""


@pytest.mark.parametrize(("damage", "message"), [
    (truncated, "not a complete LZ4 frame"),
    (line_cut_short, "line 11 is not JSON"),
    (price_not_a_number, "line 21: bid_px 'x"),
    (empty, "empty object"),
])
def test_a_corrupt_object_fails_its_hour_and_is_not_cached(
    tmp_path: Path, s3: S3Server, archive_source: dict[str, Any], damage: Any, message: str
) -> None:
    bucket = f"hl-corrupt-{damage.__name__.replace('_', '-')}"
    lines = archive_objects(("BTC",), range(5))
    bad_key = "market_data/20230601/2/l2Book/BTC.lz4"
    seed_bucket(s3.client(), bucket, {key: damage(value) if key == bad_key else compress(value)
                                      for key, value in lines.items()})
    source = {**archive_source, "bucket": bucket, "dataset": "l2_top", "symbols": ["BTC"],
              "start": "2023-06-01T00:00:00Z", "end": "2023-06-01T04:00:00Z"}
    path = pipeline_file(tmp_path, source, batch_rows=30)
    cache = Path(archive_source["cache_dir"]) / bucket

    run = etl("run", str(path))
    assert run.exit_code == 1, run
    assert f"FAILED hl l2_top/BTC: s3://{bucket}/{bad_key} is corrupt: {message}" in run.stdout, run
    assert not (cache / bad_key).exists(), "a corrupt object must not be cached"
    assert sorted(p.name for p in (cache / bad_key).parent.iterdir()) == [], "no partial download is left"
    assert (cache / "market_data/20230601/1/l2Book/BTC.lz4").is_file()
    assert landed_top(tmp_path, "BTC").equals(expected_top(lines, "BTC", DAY0, DAY0 + HOUR)), (
        "the hours before the corrupt one are committed")

    s3.client().put_object(Bucket=bucket, Key=bad_key, Body=compress(lines[bad_key]))
    before = {key: s3.count("GET", f"/{bucket}/{key}") for key in lines}
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    assert landed_top(tmp_path, "BTC").equals(expected_top(lines, "BTC", DAY0, DAY0 + 4 * HOUR))
    fetched = {key for key in lines if s3.count("GET", f"/{bucket}/{key}") > before[key]}
    assert fetched == {bad_key, "market_data/20230601/3/l2Book/BTC.lz4", "market_data/20230601/4/l2Book/BTC.lz4"}


def test_s3_slowdown_is_retried_and_access_denied_is_not(
    tmp_path: Path, s3: S3Server, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    key = "market_data/20230601/0/l2Book/BTC.lz4"
    source = {**archive_source, "dataset": "l2_top", "symbols": ["BTC"],
              "start": "2023-06-01T00:00:00Z", "end": "2023-06-01T01:00:00Z"}
    s3.fail_next(S3Fault("GET", f"/hl-day/{key}", 503, "SlowDown"))
    before = s3.count("GET", f"/hl-day/{key}")
    run = etl("run", str(pipeline_file(tmp_path / "slow", source)))
    assert run.exit_code == 0, run
    assert s3.count("GET", f"/hl-day/{key}") - before == 2
    assert landed_top(tmp_path / "slow", "BTC").equals(expected_top(archive_day.lines, "BTC", DAY0, DAY0 + HOUR))

    s3.fail_next(S3Fault("GET", f"/hl-day/{key}", 403, "AccessDenied"))
    before = s3.count("GET", f"/hl-day/{key}")
    run = etl("run", str(pipeline_file(tmp_path / "denied", {**source, "cache_dir": str(tmp_path / "empty")})))
    assert run.exit_code == 1, run
    assert f"FAILED hl l2_top/BTC: GET s3://hl-day/{key}: AccessDenied" in run.stdout
    assert "the bucket is requester-pays: AWS credentials are needed" in run.stdout
    assert s3.count("GET", f"/hl-day/{key}") - before == 1, "a permanent error is not retried"


def test_hours_not_published_yet_wait_for_a_later_run(
    tmp_path: Path, s3: S3Server, archive_source: dict[str, Any]
) -> None:
    first_day = archive_objects(("BTC",), range(24))
    seed_bucket(s3.client(), "hl-frontier", {key: compress(value) for key, value in first_day.items()})
    path = pipeline_file(tmp_path, {**archive_source, "bucket": "hl-frontier", "dataset": "l2_top",
                                    "symbols": ["BTC"], "start": "2023-06-01"})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    assert landed_top(tmp_path, "BTC").equals(expected_top(first_day, "BTC", DAY0, DAY0 + 23 * HOUR)), (
        "the last hour waits for the next file, which holds its last snapshots")
    assert not log_events(run, "hyperliquid archive hours missing (gap)")
    (waiting,) = log_events(run, "hyperliquid archive not published yet")
    assert waiting["hour"] == "2023-06-02T00:00:00Z"

    second_day = archive_objects(("BTC",), range(24, 48))
    for key, value in second_day.items():
        s3.client().put_object(Bucket="hl-frontier", Key=key, Body=compress(value))
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    both = {**first_day, **second_day}
    assert landed_top(tmp_path, "BTC").equals(expected_top(both, "BTC", DAY0, DAY0 + DAY + 23 * HOUR)), (
        "the second run continues exactly where the first stopped")


def test_dry_run_lists_objects_sizes_and_cost_without_downloading(
    tmp_path: Path, s3: S3Server, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    source = {**archive_source, "dataset": "l2_top", "symbols": ["ETH", "BTC"], "transfer_cost_per_gb": 1000.0}
    first = pipeline_file(tmp_path / "first", {**source, "start": "2023-06-01", "end": "2023-06-01T03:00:00Z"})
    assert etl("run", str(first)).exit_code == 0  # caches BTC and ETH hours 0..3
    downloads = object_gets(s3, archive_day.bucket)

    path = pipeline_file(tmp_path, {**source, "start": "2023-06-01"})
    run = etl("backfill", str(path), "--pipeline", "hl", "--start", "2023-06-01", "--end", "2023-06-01T08:00",
              "--dry-run")
    assert run.exit_code == 0, run
    assert object_gets(s3, archive_day.bucket) == downloads and not s3.count("HEAD"), "a plan downloads nothing"
    sizes = {key: len(compress(lines)) for key, lines in archive_day.lines.items()}
    for coin in ("ETH", "BTC"):
        planned = [key for key in l2_keys(archive_day.lines, coin) if key.split("/")[1] == "20230601"
                   and int(key.split("/")[2]) <= 8]
        fresh = [key for key in planned if int(key.split("/")[2]) >= 4]
        for key in planned:
            cached = "  (cached)" if key not in fresh else ""
            assert f"  s3://hl-day/{key}  {sizes[key] / 1024:.1f} KiB{cached}\n" in run.stdout, key
        to_download = sum(sizes[key] for key in fresh)
        cost = to_download / 2**30 * 1000.0 + len(fresh) / 1000 * 0.0004
        missing = 1 if coin == "ETH" else 0
        assert (f"to download: {len(fresh)} objects, {to_download / 1024:.1f} KiB ({to_download:,} bytes), "
                f"estimated ${cost:.4f} ($1000.0/GB transfer + $0.0004/1000 GET requests; requester pays)"
                in run.stdout), run.stdout
        assert f"; {missing} missing; 0 hours not published yet" in run.stdout
    assert "  s3://hl-day/market_data/20230601/5/l2Book/ETH.lz4  missing (gap)" in run.stdout


def expected_contexts(archive: Archive, coin: str) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(key for key in archive.lines if key.startswith("asset_ctxs/")):
        for row in csv.DictReader(archive.lines[key]):
            if row["coin"] == coin:
                values = {name: None if row[name] in ("", "null") else float(row[name])
                          for name in row if name not in ("time", "coin")}
                rows.append({"ts": int(pl.Series([row["time"]]).str.to_datetime().dt.epoch("ms")[0]), **values})
    return rows


def test_asset_contexts_feed_asset_ctxs_funding_and_open_interest(
    tmp_path: Path, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    window = {"symbols": ["ETH", "BTC"], "start": "2023-06-01", "end": "2023-06-04"}
    path = pipelines_file(tmp_path, {
        name: {**archive_source, "dataset": name, **window} for name in ("asset_ctxs", "funding", "open_interest")
    })
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    gaps = log_events(run, "hyperliquid archive day missing (gap)")
    assert {record["key"] for record in gaps} == {"asset_ctxs/20230602.csv.lz4"} and len(gaps) == 6
    assert "archive days missing: 6" in run.summary
    for coin in ("ETH", "BTC"):
        expected = pl.DataFrame(expected_contexts(archive_day, coin))
        assert expected.height == 2 * 1440
        assert expected["mid_px"].null_count() and expected["premium"].null_count(), "the fixture has empty cells"
        contexts = stored(tmp_path, "asset_ctxs").filter(pl.col("symbol") == coin)
        assert contexts.with_columns(pl.col("ts").dt.epoch("ms")).select(expected.columns).equals(expected)
        funding = stored(tmp_path, "funding").filter(pl.col("symbol") == coin)
        assert funding.select(pl.col("ts").dt.epoch("ms"), "funding_rate", "premium").equals(
            expected.select("ts", funding_rate="funding", premium="premium"))
        interest = stored(tmp_path, "open_interest").filter(pl.col("symbol") == coin)
        assert interest.select(pl.col("ts").dt.epoch("ms"), "open_interest").equals(
            expected.select("ts", "open_interest"))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda row: row.replace(",ETH,", ",ETH,abc", 1), "ETH: funding is not a number in {'time': '2023-06-01T00"),
    (lambda row: row.replace("2023-06-01T00:05:00Z", "soon"), "ETH: time is not ISO-8601"),
    (lambda row: row.replace("open_interest", "oi"), "header lacks column(s) open_interest"),
], ids=["number", "time", "header"])
def test_a_corrupt_asset_context_file_fails_its_day(
    tmp_path: Path, s3: S3Server, archive_source: dict[str, Any], damage: Any, message: str,
    request: pytest.FixtureRequest
) -> None:
    bucket = f"hl-ctx-{request.node.callspec.id}"
    rows = asset_ctx_rows(DAY0, ["BTC", "ETH"], minutes=10)
    seed_bucket(s3.client(), bucket, {asset_ctxs_key(DAY0): compress([damage(row) for row in rows])})
    path = pipeline_file(tmp_path, {**archive_source, "bucket": bucket, "dataset": "funding", "symbols": ["ETH"],
                                    **WINDOW})
    run = etl("run", str(path))
    assert run.exit_code == 1, run
    assert f"FAILED hl funding/ETH: s3://{bucket}/asset_ctxs/20230601.csv.lz4 is corrupt: {message}" in run.stdout
    assert not (Path(archive_source["cache_dir"]) / bucket / asset_ctxs_key(DAY0)).exists()


def test_dry_run_counts_a_daily_file_shared_by_coins_once(
    tmp_path: Path, s3: S3Server, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    path = pipeline_file(tmp_path, {**archive_source, "dataset": "funding", "symbols": ["ETH", "BTC"],
                                    "start": "2023-06-01"})
    run = etl("backfill", str(path), "--pipeline", "hl", "--start", "2023-06-01", "--end", "2023-06-04",
              "--dry-run")
    assert run.exit_code == 0, run
    eth, btc = run.stdout.split("funding/BTC:")
    size = len(compress(archive_day.lines["asset_ctxs/20230601.csv.lz4"]))
    assert f"  s3://hl-day/asset_ctxs/20230601.csv.lz4  {size / 1024:.1f} KiB\n" in eth
    assert "  s3://hl-day/asset_ctxs/20230602.csv.lz4  missing (gap)" in eth
    assert "2 objects," in eth and "to download: 2 objects" in eth
    assert "(also read by an earlier stream; counted there)" in btc and "to download: 0 objects" in btc
    assert "2 shared with earlier streams" in btc


def test_missing_credentials_fail_with_a_hint(
    tmp_path: Path, s3: S3Server, archive_day: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = pipeline_file(tmp_path, {"plugin": "hyperliquid_archive", "bucket": archive_day.bucket,
                                    "endpoint_url": s3.url, "cache_dir": str(tmp_path / "cache"),
                                    "dataset": "l2_top", "symbols": ["BTC"], **WINDOW})
    run = etl("run", str(path))
    assert run.exit_code == 1, run
    assert "FAILED hl l2_top/BTC: LIST s3://hl-day/market_data/: NoCredentialsError" in run.stdout
    assert "the bucket is requester-pays: AWS credentials are needed" in run.stdout


def test_a_spot_pair_is_a_configuration_error(tmp_path: Path, archive_source: dict[str, Any]) -> None:
    path = pipeline_file(tmp_path, {**archive_source, "dataset": "l2_top", "symbols": ["PURR/USDC"], **WINDOW})
    run = etl("validate", str(path))
    assert run.exit_code == 2
    assert "Symbol 'PURR/USDC': the archive holds perpetuals" in run.stderr


def test_under_ci_an_s3_server_that_cannot_start_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="moto S3 server could not start"):
        start_s3_server(host="256.0.0.1")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="moto S3 server could not start"):
        start_s3_server(host="256.0.0.1")


def test_a_bar_reaching_past_the_window_end_is_built_whole(
    tmp_path: Path, archive_day: Archive, archive_source: dict[str, Any]
) -> None:
    """A 90m bar starting at 03:00 of a window ending at 04:00 reads the 04:00 hour too (and its successor,
    for stragglers), so it is the same bar a longer window would give."""
    source = {**archive_source, "dataset": "ohlcv", "symbols": ["BTC"], "timeframes": ["90m"]}
    path = pipeline_file(tmp_path, {**source, "start": "2023-06-01T00:00:00Z", "end": "2023-06-01T04:00:00Z"})
    run = etl("run", str(path))
    assert run.exit_code == 0, run
    whole_day = expected_bars(expected_top(archive_day.lines, "BTC", DAY0, DAY0 + DAY), "90m")
    landed = stored(tmp_path, "ohlcv").select(pl.col("ts").dt.epoch("ms"), "open", "high", "low", "close",
                                              "snapshots")
    assert landed["ts"].to_list() == [DAY0, DAY0 + 90 * MINUTE, DAY0 + 180 * MINUTE]
    assert landed.equals(whole_day.head(3))

"""``etl heal`` on a source with a trading calendar: weekends and holidays are never gaps, never fetched."""

from datetime import UTC, date, datetime

import duckdb


def test_heal_keeps_the_calendar(fake_yahoo, yahoo_pipeline, etl_cli, tmp_path):
    daily = fake_yahoo.add_sessions("AAPL", "1d_AAPL_events", "XNYS", "1d", "2024-06-24", "2024-07-12")
    friday = daily.pop(4)  # 2024-06-28: never served
    tuesday_at = 5
    tuesday = daily.pop(tuesday_at)  # 2024-07-02: served late
    assert [datetime.fromtimestamp(bar.ts, UTC).date() for bar in (friday, tuesday)] == [date(2024, 6, 28),
                                                                                        date(2024, 7, 2)]
    path = yahoo_pipeline(["AAPL"], ["1d"], start="2024-06-24", end="2024-07-13")
    assert etl_cli("run", str(path)).summary.endswith(", gaps: 2, missing bars: 2")

    daily.insert(tuesday_at, tuesday)
    healed = etl_cli("heal", str(path))
    assert healed.exit_code == 0, healed.output
    assert healed.summary.endswith(", gaps confirmed: 1, gaps filled: 1")
    assert etl_cli("status", str(path), "--gaps").stdout.splitlines()[:4] == [
        "no open gaps",
        "",
        "confirmed (the venue has no rows there):",
        "pipeline  stream         from                  to                    missing bars  confirmed",
    ]
    with duckdb.connect(str(tmp_path / "data" / "yahoo.duckdb"), read_only=True) as con:
        days = [day for (day,) in con.execute("select strftime(ts, '%m-%d') from ohlcv order by ts").fetchall()]
    assert days == ["06-24", "06-25", "06-26", "06-27", "07-01", "07-02", "07-03", "07-05", "07-08", "07-09",
                    "07-10", "07-11", "07-12"]
    assert etl_cli("heal", str(path)).stdout == "No open gaps.\n"

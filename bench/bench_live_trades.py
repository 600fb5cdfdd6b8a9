"""CPU a live Binance trade costs before the committer: the parse of its message, and its share of a frame.

    python bench/bench_live_trades.py                  # 30,000 aggTrade messages (a second at 30,000/s)
    python bench/bench_live_trades.py --messages 100000 --batch 5000

Each figure is the fastest of five runs. ``parse`` is ``etl_binance.live.parse`` on each
combined-stream message (JSON, one record); ``frame per batch`` makes the records one frame ``--batch`` at a
time, as the follower does with what it drains from a stream's inbox (``Source.live_frame``); ``frame per
message`` is what one DataFrame a message would cost instead. No network and no sink: ``etl stream`` against
a venue (or a fake) measures the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "plugins")]


def main() -> None:
    from etl_binance import live

    import etl
    from etl.live import Subscription
    from fixtures.exchanges import synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=30_000, help="records made one frame at a time")
    args = parser.parse_args()

    stream = etl.Stream("trades", "BTCUSDT")
    subscription = Subscription("ws://bench", (stream,))
    trades = synthetic.agg_trades("BTCUSDT", range(10**9, 10**9 + args.messages), spot=True)
    messages = [json.dumps({"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": trade["T"],
                                                                   "s": "BTCUSDT", **trade}}) for trade in trades]
    records = [record for message in messages for _, found in live.parse(message, subscription) for record in found]
    parsed = best(lambda: [live.parse(message, subscription) for message in messages])
    batched = best(lambda: [live.frame(stream, records[at:at + args.batch]) for at in range(0, len(records),
                                                                                           args.batch)])
    sample = records[: min(len(records), 3_000)]
    single = best(lambda: [live.frame(stream, [record]) for record in sample]) / len(sample)
    assert len(records) == args.messages
    print(f"{args.messages:,} aggTrade messages, frames of {args.batch:,}")
    print(f"  parse              {parsed / args.messages * 1e6:7.2f} us a message ({args.messages / parsed:,.0f}/s)")
    print(f"  frame per batch    {batched / args.messages * 1e6:7.2f} us a message")
    print(f"  frame per message  {single * 1e6:7.2f} us a message (instead)")


def best(run: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of ``repeats`` runs, in seconds: the machine's other work only ever adds time."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


if __name__ == "__main__":
    main()

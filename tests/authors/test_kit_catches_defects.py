"""The conformance suites fail on exactly the contract a plugin breaks, and pass a correct plugin.

The probe package (tests/authors/packages/etl-kit-probe) holds a source, a sink and a transform with a
``defect`` option. It is pip-installed into a temporary folder, and one pytest run in a subprocess
collects a suite subclass per defect, written the way a plugin author writes them; the JUnit report
then tells which checks failed for which defect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

PROBE = Path(__file__).parent / "packages" / "etl-kit-probe"

SUITES = '''
import polars as pl
import pytest

from etl.testing import SinkConformance, SourceConformance, TransformConformance
from etl_kit_probe.exchange import handle


class ProbeSource(SourceConformance):
    plugin = "probe"
    symbols = ("BTC-USD",)
    timeframes = ("1h",)
    start, end = "2024-01-01", "2024-01-04"
    unknown_symbol = "NOPE-USD"
    defect = "none"

    @pytest.fixture
    def source_server(self, fake_server):
        return fake_server(handle)

    @pytest.fixture
    def plugin_options(self):
        return {"defect": self.defect, "page": 50}


class ProbeSink(SinkConformance):
    plugin = "probe"
    defect = "none"

    @pytest.fixture
    def plugin_options(self, tmp_path):
        return {"path": str(tmp_path / "store"), "defect": self.defect}

    def read_rows(self, settings, table):
        return pl.read_parquet(settings["path"] / f"{table}.parquet")


class ProbeTransform(TransformConformance):
    plugin = "probe_sma"
    rows = 60
    defect = "none"

    @pytest.fixture
    def plugin_options(self):
        return {"window": 5, "defect": self.defect}
'''

# defect -> {check that must fail: words its failure message must hold}
SOURCE_DEFECTS = {
    "unsorted": {"test_ts_is_utc_and_ascending": "goes back in time"},
    "duplicates": {"test_key_is_unique": "share a key", "test_no_open_candle": "does its paging stop"},
    "open_candle": {"test_no_open_candle": "candles still forming"},
    "inconsistent": {"test_candles_are_consistent": "inconsistent candles"},
    "end_inclusive": {"test_rows_stay_inside_the_window": "outside the window"},
    "seconds": {"test_ts_is_utc_and_ascending": "looks like epoch seconds"},
    "naive": {"test_ts_is_utc_and_ascending": "naive datetime"},
    "unstable": {"test_same_window_twice_gives_same_rows": "a second read differs"},
    "off_grid": {"test_bars_start_on_the_timeframe_grid": "is not the start of a 1h interval"},
    "hole": {"test_adjacent_windows_neither_overlap_nor_leave_a_hole": "expected rows are missing"},
    "validate_network": {"test_validate_touches_no_network": "must not touch the network"},
    "no_retry": {"test_transient_faults_are_retried": "HTTP 429"},
}
SINK_DEFECTS = {
    "append": {"test_identical_rewrite_changes_nothing": "duplicated keys",
               "test_overlapping_upsert_replaces_rows_by_key": "duplicated keys"},
    "drop_new_columns": {"test_new_column_is_added": "quote_volume"},
    "no_type_check": {"test_column_type_change_is_refused": "DID NOT RAISE"},
    "eager_open": {"test_validate_writes_nothing": "created"},
    "delete_by_ts": {"test_first_write_lands_every_row": "expected rows are missing"},
}
TRANSFORM_DEFECTS = {
    "no_warmup": {"test_warmup_gives_identical_rows_however_history_is_loaded": "versus one run"},
    "drops_column": {"test_columns_are_only_added": "column 'volume' was removed"},
    "retypes": {"test_columns_are_only_added": "column 'volume' changed type"},
    "drops_rows": {"test_clean_rows_pass_through": "expected rows are missing"},
}
KINDS = {"ProbeSource": SOURCE_DEFECTS, "ProbeSink": SINK_DEFECTS, "ProbeTransform": TRANSFORM_DEFECTS}
TEST_FILE = "test_probe_suites.py"


def suite_classes() -> str:
    """One subclass per defect, plus the correct plugin (``defect = "none"``)."""
    return "\n\n".join(
        f"class Test{base}_{defect}({base}):\n    defect = {defect!r}\n"
        for base, defects in KINDS.items()
        for defect in ["none", *defects]
    )


def selected_tests() -> list[str]:
    """Whole suites for the correct plugins; for each defect, only the checks it must fail."""
    ids = [f"{TEST_FILE}::Test{base}_none" for base in KINDS]
    for base, defects in KINDS.items():
        for defect, expected in defects.items():
            ids.extend(f"{TEST_FILE}::Test{base}_{defect}::{test}" for test in expected)
    return ids


@dataclass
class Outcome:
    status: str
    message: str


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    """(class, test) -> outcome, from one pytest run in a subprocess with the probe package installed."""
    root = tmp_path_factory.mktemp("kit-probe")
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PROBE)], check=True, capture_output=True, text=True)
    tests = root / "tests"
    tests.mkdir()
    (tests / TEST_FILE).write_text(textwrap.dedent(SUITES) + "\n\n" + suite_classes())
    report = root / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "--rootdir",
         str(tests), *selected_tests()],
        cwd=tests, env=env, capture_output=True, text=True, timeout=600,
    )
    assert report.exists(), f"pytest did not run:\n{run.stdout}\n{run.stderr}"
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = Outcome("passed", "")
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = "skipped" if child.tag == "skipped" else "failed"
                outcome = Outcome(status, f"{child.get('message', '')}\n{child.text or ''}")
        results[case.get("classname").rsplit(".", 1)[-1], case.get("name")] = outcome
    return results


@pytest.mark.parametrize("base", KINDS)
def test_correct_plugins_pass_every_check(outcomes, base):
    ran = {test: outcome for (cls, test), outcome in outcomes.items() if cls == f"Test{base}_none"}
    assert len(ran) > 5, f"Test{base}_none was not collected"
    failures = {test: outcome.message[:500] for test, outcome in ran.items() if outcome.status == "failed"}
    assert not failures


@pytest.mark.parametrize(("base", "defect", "test", "words"), [
    (base, defect, test, words)
    for base, defects in KINDS.items()
    for defect, expected in defects.items()
    for test, words in expected.items()
])
def test_each_defect_fails_its_check_with_a_clear_message(outcomes, base, defect, test, words):
    outcome = outcomes[f"Test{base}_{defect}", test]
    assert outcome.status == "failed", f"{base} with defect {defect!r} passed {test}"
    assert words in outcome.message, outcome.message[:2000]

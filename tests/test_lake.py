"""The Parquet lake: what `touchlens export parquet --lake` writes, re-runs that never double a row, and the
errors of a lake or an engine setting that cannot work. Results on a lake against the store: test_engine_parity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import touchlens
from tests.conftest import Result, write
from touchlens.locate import SETTINGS_FILE
from touchlens.store.lake import COLUMNS, LakeError, duckdb_on_lake

MAP = """
name: Lake shop
channels: [{key: web, name: Website}]
journeys: [{key: buy, name: Buy, stages: [{key: look, name: Look}, {key: pay, name: Pay}]}]
touchpoints:
  - {key: home, name: Home, stage: look, channel: web, match: {event: home}}
  - {key: cart, name: Cart, stage: pay, channel: web, match: {event: cart}}
"""
# Customer, day of January 2026, events of that day (one a minute).
VISITS = [("ann", 1, ["home", "cart"]), ("bob", 1, ["home"]), ("ann", 3, ["home", "x"]), ("cy", 4, ["cart", "home"])]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    rows = [f"{c},2026-01-0{d}T23:{i:02d}:00Z,{e}" for c, d, evs in VISITS for i, e in enumerate(evs)]
    ws.ingest_events([write(tmp_path / "e.csv", "customer_id,ts,event\n" + "\n".join(rows) + "\n")])
    ws.ingest_feedback(
        [write(tmp_path / "f.csv", "customer_id,ts,metric,score,touchpoint\nann,2026-01-02T08:00:00Z,csat,4,cart\n")]
    )
    return ws.root


def _days(lake: Path, table: str) -> Counter[str]:
    days = ds.dataset(lake / table, format="parquet", partitioning="hive").to_table(columns=["date"])
    return Counter(str(d) for d in days.column("date").to_pylist())


def test_export_lake_writes_days_and_a_rerun_replaces_them(cli: Callable[..., Result], shop: Path, tmp_path: Path):
    lake = tmp_path / "lake"
    result = cli("-w", shop, "export", "parquet", "--lake", lake)
    assert result.code == 0, result.err
    assert "7 events, 1 feedback, 3 customers, 6 touches" in result.err
    assert _days(lake, "events") == {"2026-01-01": 3, "2026-01-03": 2, "2026-01-04": 2}
    assert sorted(p.name for p in (lake / "events").iterdir()) == [f"date=2026-01-0{d}" for d in (1, 3, 4)]
    assert _days(lake, "feedback") == {"2026-01-02": 1}
    assert pq.read_table(lake / "customers").column_names == list(COLUMNS["customers"])
    # Another day already in the lake stays; the days of the store are replaced, never doubled.
    (lake / "events" / "date=2025-12-31").mkdir()
    one = pq.read_table(lake / "events" / "date=2026-01-04").slice(0, 1)
    pq.write_table(one, lake / "events" / "date=2025-12-31" / "x.parquet")
    assert cli("-w", shop, "export", "parquet", "--lake", lake).code == 0
    assert _days(lake, "events") == {"2025-12-31": 1, "2026-01-01": 3, "2026-01-03": 2, "2026-01-04": 2}


def test_the_lake_carries_the_journey_layer_as_a_rebuild_gives_it(shop: Path, tmp_path: Path) -> None:
    from touchlens.analytics.journeys import layer_state
    from touchlens.report.export import write_lake
    from touchlens.store import journeys

    ws = touchlens.open(shop)
    # A batch not yet refreshed: the export must still carry the layer a rebuild would give.
    with ws.events() as con:
        con.execute("INSERT INTO touches_stale (customer_id) VALUES ('ann')")
        con.execute("UPDATE touches SET pos = 99 WHERE customer_id = 'ann'")  # what a refresh would correct
        con.execute("BEGIN")
        journeys.rebuild_in(con)
        rebuilt = sorted(con.execute("SELECT * FROM touches").fetchall())
        con.execute("ROLLBACK")
    write_lake(ws, tmp_path / "lake")
    exported = pq.read_table(tmp_path / "lake" / "touches")
    assert exported.column_names == list(journeys.COLUMNS)
    assert sorted(tuple(r.values()) for r in exported.to_pylist()) == rebuilt
    on_lake = duckdb_on_lake(str(tmp_path / "lake"))
    assert layer_state(on_lake) == "clean"
    # A day added to the lake by hand since: the layer no longer covers the events, so it is left unread.
    (tmp_path / "lake" / "events" / "date=2025-12-31").mkdir()
    one = pq.read_table(tmp_path / "lake" / "events" / "date=2026-01-04").slice(0, 1)
    pq.write_table(one, tmp_path / "lake" / "events" / "date=2025-12-31" / "x.parquet")
    assert layer_state(duckdb_on_lake(str(tmp_path / "lake"))) == "none"


def test_export_parquet_needs_exactly_one_target(cli: Callable[..., Result], shop: Path, tmp_path: Path) -> None:
    for args in ([], ["-o", tmp_path / "a.parquet", "--lake", tmp_path / "l"]):
        result = cli("-w", shop, "export", "parquet", *args)
        assert (result.code, "give one of --output FILE" in result.err) == (1, True)
    result = cli("-w", shop, "export", "parquet", "--lake", tmp_path / "no" / "such" / "lake")
    assert result.code == 1
    assert "does not exist" in result.err


def _settings(ws: Path, text: str) -> touchlens.Workspace:
    (ws / SETTINGS_FILE).write_text(text, encoding="utf-8")
    return touchlens.open(ws)


def test_lake_setting_runs_the_analyses_on_the_lake(shop: Path, tmp_path: Path) -> None:
    from touchlens.report.export import write_lake

    write_lake(touchlens.open(shop), tmp_path / "lake")
    # A lake keeps no wait sketches: its median and p90 are exact, as the store's are when asked.
    on_store = touchlens.open(shop).flows(exact=True).to_dict()
    on_lake = _settings(shop, f'[engine]\nlake = "{tmp_path / "lake"}"\n')
    assert on_lake.flows().to_dict() == on_store
    # Delete a day from the lake: the analysis follows the lake, not the store.
    for f in (tmp_path / "lake" / "events" / "date=2026-01-04").iterdir():
        f.unlink()
    assert sum(on_lake.flows().start.values()) == 2 == sum(on_store["start"].values()) - 1
    # The library picks a lake or any Ibis backend with the lake's tables, without touching the settings.
    plain = _settings(shop, "")
    plain.use_engine(duckdb_on_lake(str(tmp_path / "lake")))
    assert plain.flows().start == on_lake.flows().start


def test_a_lake_that_cannot_be_read_is_named(shop: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "events").mkdir(parents=True)
    ws = _settings(shop, f'[engine]\nlake = "{empty}"\n')
    with pytest.raises(LakeError, match=r"empty/events: no Parquet files"):
        ws.flows()
    bad = tmp_path / "bad" / "events" / "date=2026-01-01"
    bad.mkdir(parents=True)
    pq.write_table(pq.read_table(_one_event_file(shop, tmp_path)).drop(["touchpoint"]), bad / "p.parquet")
    with pytest.raises(LakeError, match=r"bad/events: no column 'touchpoint'"):
        _settings(shop, f'[engine]\nlake = "{tmp_path / "bad"}"\n').flows()


def _one_event_file(shop: Path, tmp_path: Path) -> Path:
    from touchlens.report.export import write_lake

    write_lake(touchlens.open(shop), tmp_path / "good")
    return next((tmp_path / "good" / "events").rglob("*.parquet"))


def test_pyspark_engine_without_a_lake_says_what_to_set(cli: Callable[..., Result], shop: Path) -> None:
    (shop / SETTINGS_FILE).write_text('[engine]\nbackend = "pyspark"\n', encoding="utf-8")
    result = cli("-w", shop, "analyze", "flows")
    assert result.code == 1
    assert "the pyspark engine reads a Parquet lake: set [engine] lake" in result.err
    (shop / SETTINGS_FILE).write_text('[engine]\nbackend = "spark"\n', encoding="utf-8")
    result = cli("-w", shop, "analyze", "flows")
    assert result.code == 1
    assert "engine.backend" in result.err

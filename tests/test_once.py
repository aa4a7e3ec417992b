"""One read shared by callers asking at about the same time: computed once per key, failures not kept, the
value let go after a while; in a server, the drivers and the insights share their read of the periods, and a
page, its insights and its health one scorecard."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from touchlens.analytics import drivers as dr
from touchlens.once import Latest


def test_callers_asking_meanwhile_wait_for_the_one_computation() -> None:
    latest: Latest[int] = Latest()
    started, release, runs = threading.Event(), threading.Event(), []

    def compute() -> int:
        runs.append(1)
        started.set()
        release.wait(10)
        return 42

    got: list[int] = []
    first = threading.Thread(target=lambda: got.append(latest.get("k", compute)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: got.append(latest.get("k", compute)))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert got == [42, 42]
    assert len(runs) == 1
    assert latest.get("other", lambda: 7) == 7  # another key: computed
    assert latest.get("k", lambda: 8) == 8  # only the latest key is kept


def test_a_failure_is_not_kept_and_a_value_is_let_go_after_a_while() -> None:
    latest: Latest[int] = Latest(keep=0.05)

    def fail() -> int:
        raise RuntimeError("engine busy")

    with pytest.raises(RuntimeError, match="engine busy"):
        latest.get("k", fail)
    assert latest.get("k", lambda: 1) == 1  # computed again, not the failure
    assert latest.get("k", lambda: 2) == 1  # kept
    time.sleep(0.2)
    assert latest._held is None  # let go of without anyone asking: a large table is not held
    assert latest.get("k", lambda: 3) == 3  # past `keep`: computed again


def test_a_servers_drivers_and_insights_read_the_periods_once_and_answer_as_a_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a server the drivers and the insights share one read of the periods: the answers are a command's,
    where nothing is shared."""
    import touchlens
    from touchlens.demo_workspace import build_demo

    build_demo(tmp_path / "ws", customers=300)
    command = touchlens.open(tmp_path / "ws")
    drivers, insights = command.all_drivers(0).to_dict(), command.insights().to_dict()  # a command's: nothing shared
    del command
    ws = touchlens.open(tmp_path / "ws")
    ws.share_connection()  # as a server does: its pages' threads share one connection, and the reads
    real, reads = dr.read_periods, []

    def counted(query: dr.DriversQuery, backend: Any) -> Any:
        reads.append(query)
        return real(query, backend)

    monkeypatch.setattr(dr, "read_periods", counted)
    assert (ws.all_drivers(0).to_dict(), ws.insights().to_dict(), ws.drivers("conversion", 0).to_dict()) == (
        drivers,
        insights,
        drivers["outcomes"][0],
    )
    assert len(reads) == 1


def test_a_servers_scorecard_is_computed_once_for_the_page_its_insights_and_its_health(tmp_path: Path) -> None:
    import touchlens
    from touchlens.demo_workspace import build_demo
    from touchlens.queries.journeys import ScorecardQuery

    build_demo(tmp_path / "ws", customers=200)
    ws = touchlens.open(tmp_path / "ws")
    alone = ws.scorecard().to_dict()  # a command's: no shared connection, nothing kept
    ws.share_connection()
    runs: list[Any] = []
    real = ws.run

    def counted(query: Any) -> Any:
        runs.append(query)
        return real(query)

    ws.run = counted  # type: ignore[method-assign]
    assert ws.scorecard().to_dict() == alone
    ws.health_report()
    ws.insights()
    assert sum(isinstance(q, ScorecardQuery) for q in runs) == 1
    ws.scorecard(window="7d")  # another question: computed
    assert sum(isinstance(q, ScorecardQuery) for q in runs) == 2

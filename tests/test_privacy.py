"""Erasure on request and pseudonymisation: `touchlens forget` leaves no trace in any table of either store,
records the erasure without the id, and keeps the customer out until the suppression is lifted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import EXAMPLES, Result, write
from touchlens.store import audit
from touchlens.store import users as user_store
from touchlens.web.app import create_app

GONE = "cust-0042"
OTHERS = ("cust-0007", "cust-00420", "x-cust-0042-y")  # ids that contain the erased one must stay


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    events = "customer_id,ts,event,channel,page\n" + "".join(
        f"{c},2026-03-0{d}T10:00:00Z,product_viewed,web,/products\n" for c in (GONE, *OTHERS) for d in (1, 2)
    )
    events += f"{GONE},not-a-time,product_viewed,web,/p\n{OTHERS[0]},not-a-time,product_viewed,web,/p\n"
    feedback = "response_id,customer_id,ts,metric,score,touchpoint,comment\n" + "".join(
        f"r{i},{c},2026-03-03T10:00:00Z,csat,4,,fine\n" for i, c in enumerate((GONE, *OTHERS))
    )
    customers = "customer_id,plan\n" + "".join(f"{c},gold\n" for c in (GONE, *OTHERS))
    return (
        write(tmp_path / "events.csv", events),
        write(tmp_path / "feedback.csv", feedback),
        write(tmp_path / "customers.csv", customers),
    )


def _loaded(cli: Callable[..., Result], tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    assert cli("init", ws).code == 0
    assert cli("-w", ws, "map", "import", EXAMPLES / "outdoor_retail.yaml").code == 0
    events, feedback, customers = _files(tmp_path)
    for kind, path in (("events", events), ("feedback", feedback), ("customers", customers)):
        result = cli("-w", ws, "ingest", kind, path)
        assert result.code == 0, result.err
    return ws, events


def _traces(root: Path, text: str) -> list[str]:
    """Every (store, table, column) whose values contain `text` as a whole id, in both stores."""
    ws = touchlens.open(root)
    found: list[str] = []
    with ws.events() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall()
        for table, column in columns:
            values = con.execute(f'SELECT CAST("{column}" AS VARCHAR) FROM "{table}"').fetchall()
            found += [f"events:{table}.{column}" for (v,) in values if v and _holds(v, text)]
    engine = ws.meta_engine()
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(sa.select(table)):
                found += [
                    f"meta:{table.name}.{k}"
                    for k, v in row._mapping.items()
                    if _holds(json.dumps(v, default=str), text)
                ]
    return found


def _holds(value: str, text: str) -> bool:
    """`text` as a whole id: not inside a longer one such as cust-00420."""
    import re

    return re.search(rf"(?<![\w.@-]){re.escape(text)}(?![\w.@-])", value) is not None


@pytest.mark.slow
def test_forget_leaves_no_trace_in_any_table(cli: Callable[..., Result], tmp_path: Path) -> None:
    root, _ = _loaded(cli, tmp_path)
    assert _traces(root, GONE), "the customer was never there"
    result = cli("-w", root, "forget", GONE, "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)[0]["rows"]
    assert rows == {"events": 2, "feedback": 1, "customers": 1, "quarantine": 1}
    assert _traces(root, GONE) == []
    for other in OTHERS:
        assert _traces(root, other), f"{other} was erased too"
    # The erasure is recorded (who, when, how many rows), and names nobody.
    entry = audit.entries(touchlens.open(root).meta_engine(), action="erase")[0]
    assert entry["detail"]["rows"] == rows
    assert entry["actor"].startswith("cli:")


@pytest.mark.slow
def test_an_erased_customer_stays_out_until_the_suppression_is_lifted(cli, tmp_path: Path) -> None:
    root, events = _loaded(cli, tmp_path)
    assert cli("-w", root, "forget", GONE).code == 0
    again = cli("-w", root, "ingest", "events", events, "--json", "--source", "again")
    assert again.code == 0, again.err
    report = json.loads(again.out)
    assert report["suppressed"] == 3  # two events and the bad row: dropped, not quarantined
    _, feedback, _ = _files(tmp_path)
    answers = json.loads(cli("-w", root, "ingest", "feedback", feedback, "--json", "--source", "again").out)
    assert answers["suppressed"] == 1
    _, _, customers = _files(tmp_path)
    assert cli("-w", root, "ingest", "customers", customers).code == 0
    assert _traces(root, GONE) == []
    lifted = cli("-w", root, "forget", GONE, "--lift", "--json")
    assert json.loads(lifted.out) == [{"customer": GONE, "lifted": True}]
    back = json.loads(cli("-w", root, "ingest", "events", events, "--json", "--source", "third").out)
    assert back["suppressed"] == 0
    assert back["accepted"] == 8


@pytest.mark.slow
def test_the_api_erases_for_admins_only(cli: Callable[..., Result], tmp_path: Path) -> None:
    root, _ = _loaded(cli, tmp_path)
    engine = touchlens.open(root).meta_engine()
    user_store.add_user(engine, "ann", "correct horse", "admin")
    user_store.add_user(engine, "vic", "correct horse", "editor")
    admin = user_store.add_token(engine, "ann", ("read", "write"))
    editor = user_store.add_token(engine, "vic", ("read", "write"))
    with TestClient(create_app(root)) as client:
        refused = client.delete(f"/api/customers/{GONE}", headers={"Authorization": f"Bearer {editor}"})
        assert refused.status_code == 403
        done = client.delete(f"/api/customers/{GONE}", headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200, done.text
        assert done.json() == {
            "rows": {"events": 2, "feedback": 1, "customers": 1, "quarantine": 1},
            "suppressed": True,
        }
        with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
            left = con.execute("SELECT count(*) FROM events WHERE customer_id = ?", [GONE]).fetchone()
        assert left == (0,)
    assert audit.entries(engine, action="erase")[0]["actor"] == "ann"


@pytest.mark.slow
def test_pseudonymised_files_store_the_hmac_and_forget_takes_the_real_id(cli, tmp_path: Path) -> None:
    import hashlib
    import hmac

    root = tmp_path / "ws"
    assert cli("init", root).code == 0
    settings = root / "touchlens.toml"
    salt = "another-long-random-test-secret"
    text = settings.read_text().replace("pseudonymise = false", "pseudonymise = true")
    settings.write_text(text.replace('salt = ""', f'salt = "{salt}"'))
    events, feedback, customers = _files(tmp_path)
    for kind, path in (("events", events), ("feedback", feedback), ("customers", customers)):
        assert cli("-w", root, "ingest", kind, path).code == 0
    assert _traces(root, GONE) == []
    pseudonym = hmac.new(salt.encode(), GONE.encode(), hashlib.sha256).hexdigest()
    assert _traces(root, pseudonym)
    result = cli("-w", root, "forget", GONE, "--json")
    # The bad row is quarantined under the pseudonym too, and goes with the rest.
    assert json.loads(result.out)[0]["rows"] == {"events": 2, "feedback": 1, "customers": 1, "quarantine": 1}
    assert _traces(root, pseudonym) == []


def test_pseudonymise_without_a_salt_is_a_clear_error(cli, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    cli("init", root)
    settings = root / "touchlens.toml"
    settings.write_text(settings.read_text().replace("pseudonymise = false", "pseudonymise = true"))
    events, _, _ = _files(tmp_path)
    result = cli("-w", root, "ingest", "events", events)
    assert result.code == 1
    assert "salt" in result.err
    rows: Any = _traces(root, GONE)
    assert rows == []

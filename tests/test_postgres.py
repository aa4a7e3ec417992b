"""What PostgreSQL refuses and SQLite takes (NUL in text, over-long text) never breaks the metadata store, and
times read back alike from both."""

from __future__ import annotations

from datetime import date

import pytest

import touchlens
from touchlens.store import audit, keys, meta, users


@pytest.mark.slow
def test_text_with_nul_never_reaches_the_database(meta_workspace: touchlens.Workspace) -> None:
    engine = meta_workspace.meta_engine()
    users.add_user(engine, "ann", "password1", "viewer")
    assert users.authenticate(engine, "ann\x00", "password1") is None  # a sign-in form can send anything
    assert not users.remove_user(engine, "ann\x00")
    audit.record(engine, "anonymous\x00", "sign-in-failed", "user ann\x00" + "x" * 600)
    entry = audit.entries(engine)[0]
    assert (entry["actor"], entry["target"]) == ("anonymous", "user ann" + "x" * 492)
    users.add_token(engine, "ann", ("read",), "label\x00" * 100)
    change = meta.add_change(engine, "tp", date(2026, 1, 2), "new\x00 page")
    assert meta.list_changes(engine) == [
        {"id": change, "touchpoint": "tp", "date": date(2026, 1, 2), "note": "new page"}
    ]
    engine.dispose()


def test_stored_times_read_back_as_utc(meta_workspace: touchlens.Workspace) -> None:
    engine = meta_workspace.meta_engine()
    meta_workspace.save_map(touchlens.model.map.TouchpointMap(name="Shop"))
    version = meta_workspace.map_version()
    assert version is not None
    assert version.endswith("+00:00")
    keys.add_key(engine, "ingest", "site", "web", "tests")
    assert keys.list_keys(engine)[0].created_at.endswith("+00:00")
    engine.dispose()

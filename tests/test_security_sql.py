"""No user text ever becomes SQL (issue 16, Build 1): a property name reaches every engine only as data in a quoted
string literal or a bound value; a name an engine cannot address exactly is refused with `BadOption`; analyses
run on DuckDB connections that reach no file and no network and run one statement per call; and a read-only
role changes nothing through any route, whatever it puts in a query parameter.

The attack that found this (a viewer reading files through `breakdown=property:NAME`) is kept as named
regression tests, on the command line and through the API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import ibis
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import touchlens
from tests.conftest import Result, workspace_with
from touchlens.analytics.engine import json_text, property_text
from touchlens.errors import BadOption, MapError
from touchlens.ingest.rules import MAX_PROPERTY_NAME, compile_rules, json_pointer
from touchlens.model.map import STORED, Touchpoint, TouchpointMap
from touchlens.model.mapfile import parse_map
from touchlens.store import events as events_store
from touchlens.store import users as user_store
from touchlens.store.backends import MultipleStatements, backend_on, duckdb_backend
from touchlens.web.app import create_app
from touchlens.web.security import SESSION_COOKIE

SECRET = "TOP-SECRET-FIRST-LINE"


def payloads(folder: Path) -> dict[str, str]:
    """The attack's property names: each would read a file, write one or change a table if it became SQL."""
    secret, out = folder / "secret.txt", folder / "pwned.csv"
    return {
        "read_text": "b'.replace(chr(34), ''), (SELECT split_part(content, chr(10), 1) FROM "
        f"read_text('{secret}'))) || COALESCE('x",
        "read_blob": f"x' || (SELECT hex(content) FROM read_blob('{secret}')) || '",
        "copy": f"x'); COPY (SELECT 42 AS pwned) TO '{out}'; --",
        "create_table": "x'); CREATE TABLE pwned AS SELECT 42 AS pwned; --",
        "drop_table": "x'\"; DROP TABLE events; --",
        "json_path": "\"]; ATTACH '" + str(folder / "pwned.duckdb") + "' AS p; --",
        "comment": "x' /* */ || '' -- ",
    }


# -- the one addressing function, attacked ---------------------------------------------------------------

# Every SQL, JSON-path and quote character, and the pieces of an attack, mixed with any other character.
PIECES = [*"'\";\\$.[]*/~-#@?%_{}()`\n\r\t\x00 ", "--", "/*", "*/", "');", "$.", "[#0]", "~1", "' OR 1=1 --"]
names = st.lists(st.sampled_from(PIECES) | st.characters(), max_size=12).map("".join)
values = st.text(max_size=8)


class Probe:
    """One in-memory events store for every example: the row under test, a canary table, a folder to watch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.con = events_store.connect(Path(":memory:"), read_only=True)
        self.con.execute("CREATE TABLE canary AS SELECT 1 AS alive")
        self.backend = backend_on(self.con)

    def store(self, properties: dict[str, str]) -> None:
        self.con.execute("DELETE FROM events")
        self.con.execute(
            "INSERT INTO events VALUES ('e1', 's', 'c1', NULL, NULL, now(), 'ev', NULL, NULL, ?, now(), 1)",
            [json.dumps(properties)],
        )

    def untouched(self) -> bool:
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        alive = self.con.execute("SELECT count(*) FROM canary").fetchone()
        return tables == set(events_store.TABLES) | {"canary"} and alive == (1,) and not any(self.folder.iterdir())


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    return Probe(tmp_path_factory.mktemp("probe"))


def refused(name: str) -> bool:
    """What `json_pointer` refuses: empty, NUL, too long, or a lone surrogate (no UTF-8 for it, so no JSON)."""
    lone_surrogate = any("\ud800" <= c <= "\udfff" for c in name)
    return not name or "\x00" in name or len(name) > MAX_PROPERTY_NAME or lone_surrogate


@pytest.mark.slow
@given(name=names, value=values)
@example(name="a'b", value="v")
@example(name='a"b\\', value="v")
@example(name="", value="v")
@example(name="a\x00b", value="v")
@example(name="x" * (MAX_PROPERTY_NAME + 1), value="v")
@example(name="a\nb", value="v")
@example(name="~1/~0", value="v")
@example(name="\ud800", value="")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_property_text_reads_any_name_as_data_or_refuses_it(probe: Probe, name: str, value: str) -> None:
    # A refused name need not be stored: one with a lone surrogate cannot be (DuckDB's JSON refuses "\ud800").
    probe.store({"decoy": "other"} if refused(name) else {name: value, "decoy": "other"})
    t = probe.backend.table("events")
    if refused(name):
        with pytest.raises(BadOption, match="property name"):
            property_text(t, name)
        return
    expr = t.select(v=property_text(t, name))
    sql = ibis.to_sql(expr)
    assert [s.type for s in duckdb.extract_statements(sql)] == [duckdb.StatementType.SELECT]
    assert probe.backend.to_pyarrow(expr).column("v").to_pylist() == [value]
    assert probe.untouched()


@given(name=names.filter(lambda n: not refused(n)), value=values)
@example(name="a\nb", value="v")
@example(name="a'b", value="v")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ingest_rules_match_a_property_of_any_name(probe: Probe, name: str, value: str) -> None:
    probe.store({name: value})
    tp = Touchpoint.model_validate({"key": "hit", "match": {"where": {name: {"equals": value}}}})
    rules = compile_rules([tp])
    assert probe.con.execute(f"SELECT {rules.sql} FROM events", rules.params).fetchall() == [("hit",)]
    assert probe.untouched()


def test_regression_property_names_with_control_characters_match_at_ingest(probe: Probe) -> None:
    # The JSON path ("$." + JSON string) carried "\n" as an escape DuckDB does not decode: the rule never matched.
    probe.store({"line\nbreak": "yes"})
    assert probe.con.execute("SELECT json_extract_string(properties, ?) FROM events", [json_pointer("line\nbreak")])
    assert probe.con.fetchall() == [("yes",)]


@pytest.mark.parametrize("name", ["", "a\x00b", "x" * (MAX_PROPERTY_NAME + 1), "\udcff"])
def test_names_no_engine_can_take_are_refused_with_the_name(name: str) -> None:
    with pytest.raises(BadOption, match="property name"):
        json_pointer(name)


def test_the_generic_ibis_route_checks_the_name_too() -> None:
    doc = ibis.table({"p": "string"}, name="t").p
    with pytest.raises(BadOption, match="property name is empty"):
        json_text(doc, "", "sqlite")


# -- PySpark: its JSON paths have no escape --------------------------------------------------------------

SPARK_NAMES = ["plain", 'a"b', "a\\b", "a.b", "x[0]", "]", "[", "$", "[*]", "é😀", "a\nb", "a ", "?", "@", "~/"]
SPARK_REFUSED = ["a'b", "'", "*", " a", "\ta", "\na", "", "a\x00"]


@pytest.mark.parametrize("name", SPARK_REFUSED)
def test_pyspark_refuses_names_its_json_paths_cannot_address(name: str) -> None:
    doc = ibis.table({"p": "string"}, name="t").p
    with pytest.raises(BadOption, match="property name"):
        json_text(doc, name, "pyspark")


def test_regression_pyspark_path_keeps_backslashes_and_quotes_as_data() -> None:
    # sqlglot parsed the literal path "$['a\\b']" and re-rendered it as "$['a']".
    t = ibis.table({"p": "string"}, name="t")
    sql = ibis.to_sql(t.select(v=json_text(t.p, "a\\b", "pyspark")), dialect="pyspark")
    assert "'a\\\\b'" in sql


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("PySpark needs Java")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.mark.engine
def test_pyspark_reads_every_name_it_accepts_exactly(spark: Any) -> None:
    rows = [
        (i, json.dumps({n: f"v{i}", "plain": "decoy" if n != "plain" else f"v{i}"})) for i, n in enumerate(SPARK_NAMES)
    ]
    spark.createDataFrame(rows, "i int, properties string").createOrReplaceTempView("props")
    t = ibis.pyspark.connect(spark).table("props")
    got = {}
    for i, name in enumerate(SPARK_NAMES):
        got[name] = t.filter(t.i == i).select(v=json_text(t.properties, name, "pyspark")).to_pyarrow().column("v")[0]
    assert {n: v.as_py() for n, v in got.items()} == {n: f"v{i}" for i, n in enumerate(SPARK_NAMES)}


# -- the engine's connection: no files, no network, one statement ----------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "events.duckdb"
    events_store.connect(path).close()
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('{dir}/secret.txt')",
        "SELECT * FROM read_blob('{dir}/secret.txt')",
        "SELECT * FROM read_csv('{dir}/secret.txt')",
        "COPY (SELECT 1) TO '{dir}/pwned.csv'",
        "ATTACH '{dir}/pwned.duckdb' AS p",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET memory_limit = '1TB'",
    ],
)
def test_analysis_connection_reaches_no_file_and_cannot_be_reconfigured(store: Path, sql: str) -> None:
    backend = duckdb_backend(store)
    with pytest.raises(duckdb.Error):
        backend.raw_sql(sql.format(dir=store.parent))
    assert sorted(p.name for p in store.parent.iterdir()) == ["events.duckdb", "secret.txt"]


def test_analysis_connection_still_answers_analyses(store: Path) -> None:
    backend = duckdb_backend(store)
    t = backend.table("events")
    assert backend.to_pyarrow(t.count()).as_py() == 0
    assert backend.to_pyarrow(ibis.memtable({"a": [1, 2]}).a.sum()).as_py() == 3  # Arrow handed over by register
    assert backend.raw_sql("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


@pytest.mark.parametrize(
    "sql", ["SELECT 1; CREATE TABLE pwned (a INT)", "SELECT 1;COPY (SELECT 1) TO 'x.csv'", "SELECT 2; SELECT 3"]
)
def test_regression_engine_refuses_stacked_statements(sql: str) -> None:
    con = events_store.connect(Path(":memory:"), read_only=True)
    backend = backend_on(con)
    with pytest.raises(MultipleStatements):
        backend.raw_sql(sql)
    with pytest.raises(MultipleStatements):
        backend.con.sql(sql)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'pwned'").fetchone() == (0,)


def test_one_statement_with_a_semicolon_inside_a_string_runs() -> None:
    backend = backend_on(events_store.connect(Path(":memory:"), read_only=True))
    assert backend.raw_sql("SELECT ';' AS s;").fetchone() == (";",)


def test_a_locked_shared_connection_gives_cursors_that_run_analyses(store: Path) -> None:
    # The server's shape: one read-write connection, confined and locked, a cursor per analysis.
    con = events_store.connect(store, analysis_only=True)
    backend_on(con)  # its settings made globally, before the lock
    events_store.lock(con)
    backend = backend_on(con.cursor())
    t = backend.table("events")
    assert backend.to_pyarrow(t.count()).as_py() == 0
    assert backend.raw_sql("SELECT list_transform([1], x -> x + 1)").fetchone() == ([2],)
    assert backend.raw_sql("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    with pytest.raises(duckdb.Error):
        backend.raw_sql(f"SELECT * FROM read_text('{store.parent}/secret.txt')")
    with con.cursor() as writer:  # the writer and uploads hand Arrow over by register: still allowed
        writer.register("batch", ibis.memtable({"a": [1]}).to_pyarrow())
        assert writer.execute("SELECT count(*) FROM batch").fetchone() == (1,)


SECOND_CONNECTION = """
import sys
from pathlib import Path
from touchlens.store import events
from touchlens.store.backends import duckdb_backend
path = Path(sys.argv[1])
first = events.connect(path, read_only=True, analysis_only=True)
events.lock(first)
second = events.connect(path, read_only=True, analysis_only=True)
backend = duckdb_backend(path)
del first  # its cursors outlive it, and serve the next caller
third = events.connect(path, read_only=True, analysis_only=True)
for con in (second, backend.con, third):
    print(con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0])
    try:
        con.execute("SELECT * FROM read_text('" + str(path.parent / "secret.txt") + "')")
        print("read the file")
    except Exception:
        print("refused")
print(backend.to_pyarrow(backend.table("events").count()).as_py())
"""


def test_regression_a_second_analysis_connection_has_the_progress_bar_off_and_stays_confined(store: Path) -> None:
    # DuckDB's progress bar writes to stdout, into --json output. A second connection to a store already open and
    # locked in the process (an analysis inside another) had DuckDB's default, which a locked instance cannot
    # change: on when the program runs as `python -c` (DuckDB takes a main module without a file for an
    # interactive session), as `python -c "from touchlens.cli import main; main()" ... --json` did at 100M events.
    command = [sys.executable, "-c", SECOND_CONNECTION, str(store)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "refused"] * 3 + ["0"]


def test_confined_folders_stay_readable(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    duckdb.connect().execute(f"COPY (SELECT 1 AS a) TO '{lake}/part.parquet'")
    con = events_store.connect(Path(":memory:"), read_only=True, analysis_only=True, readable=[str(lake)])
    assert con.execute(f"SELECT a FROM read_parquet('{lake}/*.parquet')").fetchall() == [(1,)]
    with pytest.raises(duckdb.Error):
        con.execute(f"SELECT * FROM read_text('{tmp_path}/*')")


# -- the attack on the command line ----------------------------------------------------------------------

MAP = """
name: Shop
touchpoints:
  - {key: home, match: {event: home}}
  - {key: buy, match: {event: buy}}
outcomes:
  conversion: {event: buy, where: {plan: gold}}
"""
EVENTS = "customer_id,ts,event,plan\nc1,2026-01-05T09:00:00Z,home,gold\nc1,2026-01-05T09:10:00Z,buy,gold\n"


@dataclass
class Scene:
    """A workspace with events, a secret file beside it, and how the events store and the folder look."""

    ws: Path
    folder: Path
    server: touchlens.Workspace | None = None  # a running app's workspace: its shared connection is the way in

    def tables(self) -> dict[str, int]:
        opened = self.server or touchlens.open(self.ws)
        with opened.events(read_only=True) as con:
            names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
            return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}

    def files(self) -> set[Path]:
        return set(self.folder.rglob("*"))


@pytest.fixture
def scene(cli: Callable[..., Result], tmp_path: Path) -> Scene:
    ws = workspace_with(cli, tmp_path, MAP, EVENTS)
    (tmp_path / "secret.txt").write_text(SECRET + "\nsecond line\n", encoding="utf-8")
    return Scene(ws, tmp_path)


def funnel_cli(cli: Callable[..., Result], scene: Scene, name: str) -> Result:
    return cli("-w", scene.ws, "analyze", "funnel", "--steps", "home,buy", "--breakdown", f"property:{name}", "--json")


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["read_text", "read_blob", "copy", "create_table", "drop_table", "json_path"])
def test_regression_cli_funnel_breakdown_runs_no_sql_from_a_property_name(
    cli: Callable[..., Result], scene: Scene, attack: str
) -> None:
    tables, files = scene.tables(), scene.files()
    name = payloads(scene.folder)[attack]
    result = funnel_cli(cli, scene, name)
    assert result.code == 0, result.err
    assert SECRET not in result.out
    assert SECRET.encode().hex().upper() not in result.out
    # The name is data: no event has such a property, so every customer falls in "(none)".
    breakdown = json.loads(result.out)["breakdown"]
    assert breakdown == {"by": f"property:{name}", "groups": [{"group": "(none)", "counts": [1, 1]}]}
    assert scene.tables() == tables
    assert scene.files() == files


def test_regression_cli_empty_property_breakdown_is_a_clear_error(cli: Callable[..., Result], scene: Scene) -> None:
    result = funnel_cli(cli, scene, "")
    assert result.code == 1
    assert "property name is empty" in result.err


def test_a_real_property_breakdown_still_groups(cli: Callable[..., Result], scene: Scene) -> None:
    result = funnel_cli(cli, scene, "plan")
    assert json.loads(result.out)["breakdown"]["groups"] == [{"group": "gold", "counts": [1, 1]}]


# -- a read-only role through the web --------------------------------------------------------------------

PASSWORD = "correct horse battery"


@dataclass
class Site:
    app: FastAPI
    scene: Scene
    read_token: str

    def client(self, who: str) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if who == "read_token":
            client.headers["Authorization"] = f"Bearer {self.read_token}"
        else:
            session, csrf = user_store.start_session(self.app.state.web.ws.meta_engine(), user_store.User(who, who))
            client.cookies.set(SESSION_COOKIE, session)
            client.headers["X-CSRF-Token"] = csrf
        return client

    def meta(self) -> dict[str, int]:
        """Row counts of the metadata store, less what reading legitimately touches (sessions, sign-ins)."""
        engine = self.app.state.web.ws.meta_engine()
        names = [n for n in sa.inspect(engine).get_table_names() if "session" not in n and "sign" not in n]
        with engine.connect() as conn:
            return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


@pytest.fixture
def site(cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    ws = workspace_with(cli, tmp_path, MAP, EVENTS)
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # uploads and spills land where the test watches
    engine = touchlens.open(ws).meta_engine()
    for role in ("viewer", "admin"):
        user_store.add_user(engine, role, PASSWORD, role)
    read_token = user_store.add_token(engine, "admin", ("read",))
    engine.dispose()
    app = create_app(ws)
    yield Site(app, Scene(ws, tmp_path, app.state.web.ws), read_token)
    if app.state.web.live is not None:
        app.state.web.live.stop()


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, list[str], list[str]]]:
    """(method, path, query parameter names, path parameter names) of every route, inside routers too."""

    def walk(found: list[Any], prefix: str) -> Iterator[tuple[str, str, list[str], list[str]]]:
        for route in found:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(list(inner.routes), prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                query = [p.alias for p in route.dependant.query_params]
                path = [p.alias for p in route.dependant.path_params]
                yield from ((m, prefix + route.path, query, path) for m in route.methods or ())

    return walk(list(app.routes), "")


# Valid values for the parameters a route needs to reach its analysis; each is replaced in turn by an attack.
BASE = {
    "/api/funnel": {"steps": "home,buy"},
    "/funnel": {"steps": "home,buy"},
    "/api/paths": {"from": "home"},
    "/api/attribution": {"model": "linear"},
    "/api/drivers": {"outcome": "conversion"},
}
HOSTILE = ["'", '"', "\\", "%' OR 1=1 --", "$[*]..x", "\x00", "ü🙂\u202e", "a" * 5000]


def hostile_values(folder: Path) -> list[str]:
    attacks = list(payloads(folder).values())
    return [*attacks, *(f"property:{a}" for a in attacks), *HOSTILE, "property:"]


def requests(
    path: str, query: list[str], path_params: list[str], values: list[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """(url, query parameters) with each parameter in turn set to each value, the others valid; a route without
    parameters once."""
    base = BASE.get(path, {})
    for param in [*query, *path_params]:
        for value in values:
            params = {k: v for k, v in base.items() if k != param}
            url = path.replace("{" + param + "}", quote(value, safe=""))
            if param in query:
                params[param] = value
            for other in path_params:
                url = url.replace("{" + other + "}", "home")
            yield url, params
    if not query and not path_params:
        yield path, dict(base)


def test_regression_viewer_cannot_read_files_through_a_property_name(site: Site) -> None:
    name = payloads(site.scene.folder)["read_text"]
    tables, files = site.scene.tables(), site.scene.files()
    answer = site.client("viewer").get("/api/funnel", params={"steps": "home,buy", "breakdown": f"property:{name}"})
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text
    assert answer.json()["breakdown"]["groups"] == [{"group": "(none)", "counts": [1, 1]}]
    assert site.scene.tables() == tables
    assert site.scene.files() == files


@pytest.mark.parametrize("attack", ["copy", "create_table", "read_blob", "drop_table"])
def test_regression_read_token_cannot_write_or_read_through_a_property_name(site: Site, attack: str) -> None:
    name = payloads(site.scene.folder)[attack]
    tables, files = site.scene.tables(), site.scene.files()
    answer = site.client("read_token").get("/api/funnel", params={"steps": "home,buy", "breakdown": f"property:{name}"})
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text
    assert SECRET.encode().hex().upper() not in answer.text
    assert site.scene.tables() == tables
    assert site.scene.files() == files


def test_regression_empty_property_breakdown_is_a_422(site: Site) -> None:
    answer = site.client("viewer").get("/api/funnel", params={"steps": "home,buy", "breakdown": "property:"})
    assert answer.status_code == 422
    assert "property name is empty" in answer.text


@pytest.mark.slow
def test_read_only_roles_change_nothing_through_any_get_route(site: Site) -> None:
    """Every GET route, every query and path parameter, every hostile value, a viewer and a read token in turn."""
    clients = [site.client("viewer"), site.client("read_token")]
    tables, files, meta = site.scene.tables(), site.scene.files(), site.meta()
    failures, n = [], 0
    for method, path, query, path_params in api_routes(site.app):
        if method != "GET":
            continue
        for url, params in requests(path, query, path_params, hostile_values(site.scene.folder)):
            answer = clients[n % 2].get(url, params=params)
            n += 1
            if answer.status_code >= 500 or SECRET in answer.text:
                failures.append((answer.status_code, path, params, url[:80]))
    assert failures == []
    assert site.scene.tables() == tables
    assert site.scene.files() == files
    assert site.meta() == meta


@pytest.mark.slow
def test_read_only_roles_are_refused_every_route_that_changes_something(site: Site) -> None:
    # /login and /logout are public (logging out a session is no change to the workspace's data); so are a
    # customer's survey answer and an auditor's walkthrough, where the signed link is the permission.
    public = {"/login", "/logout", "/s/{token}", "/s/{token}/comment", "/walk/{token}/{number}"}
    clients = {"viewer": site.client("viewer"), "read_token": site.client("read_token")}
    tables, meta = site.scene.tables(), site.meta()
    wrong = []
    for method, path, _, path_params in api_routes(site.app):
        if method == "GET" or path in public:
            continue
        url = path
        for p in path_params:
            url = url.replace("{" + p + "}", "home")
        for who, client in clients.items():
            answer = client.request(method, url, json={})
            if answer.status_code not in (401, 403):
                wrong.append((who, method, path, answer.status_code))
    assert wrong == []
    assert site.scene.tables() == tables
    assert site.meta() == meta


@pytest.mark.slow
def test_the_viewer_fixture_is_signed_in(site: Site) -> None:
    # Guards the tests above: a client that was not signed in would be refused everything, proving nothing.
    assert site.client("viewer").get("/api/me").json()["role"] == "viewer"
    assert site.client("read_token").get("/api/funnel", params={"steps": "home,buy"}).status_code == 200


# -- a property name no engine can take is a map error, never a failure of every later ingest -----------------


@pytest.mark.parametrize("where", ['""', '"a\\u0000b"', '"' + "x" * 1001 + '"'], ids=["empty", "nul", "long"])
def test_regression_a_map_rule_on_a_property_no_engine_can_take_is_refused_at_import(where: str) -> None:
    """The red team's finding: such a rule was accepted, then every ingest (and all of /v1) failed on it."""
    text = f'{{"name": "Shop", "touchpoints": [{{"key": "home", "match": {{"where": {{{where}: "x"}}}}}}]}}'
    with pytest.raises(MapError, match=r"touchpoints\[0\]\.match\.where"):
        parse_map(text, "shop.json")
    value = f'{{"name": "Shop", "outcomes": {{"conversion": {{"event": "buy", "value": {where}}}}}}}'
    with pytest.raises(MapError, match=r"outcomes\.conversion\.value"):
        parse_map(value, "shop.json")


@pytest.mark.slow
def test_regression_an_editor_cannot_stop_live_ingestion_with_a_property_name(site: Site) -> None:
    editor = site.client("admin")
    rule = {"match": {"event": "home", "where": {"x" * 1500: {"exists": False}}}}
    assert editor.patch("/api/touchpoints/home", json=rule).status_code == 422
    assert site.scene.server is not None
    home = site.scene.server.map().touchpoint("home")
    assert home is not None
    assert home.match is not None
    assert home.match.where == {}


@pytest.mark.slow
def test_a_map_stored_by_an_older_version_with_such_a_name_still_loads_and_exports(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """An older version stored such rules; refusing them on load would lock people out of their own map."""
    ws = touchlens.init(tmp_path / "ws")
    doc = {"name": "Shop", "touchpoints": [{"key": "home", "match": {"event": "home", "where": {"": "x"}}}]}
    ws.save_map(TouchpointMap.model_validate(doc, context=STORED))
    home = touchlens.open(ws.root).map().touchpoint("home")
    assert home is not None
    assert home.match is not None
    assert home.match.where.keys() == {""}
    exported = cli("-w", ws.root, "map", "export", "--format", "json")
    assert exported.code == 0, exported.err
    with pytest.raises(MapError, match="cannot be empty"):  # fixing it is asked for on the next import
        parse_map(exported.out, "shop.json")

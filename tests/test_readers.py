"""Export readers (GA4, Mixpanel, Amplitude, Zendesk, Intercom, Qualtrics, feedback CSV) and format detection.

Each reader is checked on its canonical rows directly: what lands in which column, which record number a
row carries, which records become error rows, and which give no row at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import touchlens
from touchlens.ingest.readers import EVENT_READERS, FEEDBACK_READERS, detect_feedback_format, detect_format
from touchlens.ingest.readers.base import (
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    META_COLUMNS,
    Reader,
    ReaderError,
    ReadOptions,
)

DATA = Path(__file__).parent / "data"
GA4 = DATA / "ga4_events.jsonl"
QUALTRICS = DATA / "qualtrics_survey.csv"
ZENDESK = DATA / "zendesk_tickets.json"
INTERCOM = DATA / "intercom_conversations.json"


def read(reader: Reader, path: Path, **columns: str) -> list[dict[str, Any]]:
    batches = list(reader(path, ReadOptions(columns=columns)))
    return pa.Table.from_batches(batches).to_pylist() if batches else []


def props(row: dict[str, Any]) -> Any:
    return json.loads(row["properties"]) if row["properties"] else None


def pick(rows: list[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(row[n] for n in names) for row in rows]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# GA4 ---------------------------------------------------------------------------------------------------


def test_ga4_rows_carry_canonical_columns_in_order() -> None:
    rows = read(EVENT_READERS["ga4"], GA4)
    assert list(rows[0]) == [*META_COLUMNS, *EVENT_COLUMNS, "properties"]
    assert [r["_row"] for r in rows] == list(range(1, 11))
    assert all(r["_error"] is None for r in rows)


def test_ga4_flattens_params_of_every_value_type_and_keeps_user_properties_and_traffic_source() -> None:
    rows = read(EVENT_READERS["ga4"], GA4)
    view, cart = rows[2], rows[3]
    assert pick([view], "customer_id", "anonymous_id", "session_id", "ts", "event", "channel") == [
        ("cust-42", "1234.5678", "1709283600", "2024-03-01T09:01:00+00:00", "view_item", "web")
    ]
    assert props(view) == {
        "page_location": "https://shop.example.com/p/tent-2",
        "page_title": "Trail Tent 2",
        "value": 249.99,
        "currency": "EUR",
        "user_properties": {"membership": "gold", "lifetime_orders": 3},
        "traffic_source": {"name": "spring_sale", "medium": "cpc", "source": "google"},
    }
    assert props(cart)["discount_rate"] == 0.1  # float_value
    assert props(rows[0])["ga_session_number"] == 1  # int_value, written as a string by BigQuery
    assert "ga_session_id" not in props(rows[0])


def test_ga4_customer_is_user_id_else_pseudo_id_and_platform_is_the_channel() -> None:
    rows = read(EVENT_READERS["ga4"], GA4)
    assert pick(rows, "customer_id", "anonymous_id", "channel")[:7] == [
        ("1234.5678", "1234.5678", "web"),
        ("1234.5678", "1234.5678", "web"),
        ("cust-42", "1234.5678", "web"),
        ("cust-42", "1234.5678", "web"),
        ("cust-42", "app-77", "ios"),
        ("cust-42", "app-77", "ios"),
        ("droid-9", "droid-9", "android"),
    ]


def test_ga4_timestamp_as_string_micros_is_converted_and_a_bad_one_is_left_for_the_pipeline() -> None:
    rows = read(EVENT_READERS["ga4"], GA4)
    assert rows[4]["ts"] == "2024-03-01T09:05:00+00:00"  # event_timestamp given as a string
    assert rows[7]["ts"] == "not-a-time"
    assert rows[7]["_error"] is None  # the pipeline reports it as an unparseable timestamp


def test_ga4_row_without_any_user_id_has_no_customer() -> None:
    row = read(EVENT_READERS["ga4"], GA4)[8]
    assert (row["customer_id"], row["anonymous_id"], row["event"]) == (None, None, "page_view")


def test_ga4_event_id_is_a_hash_of_the_whole_row_equal_for_duplicates_and_stable_across_runs() -> None:
    first = [r["event_id"] for r in read(EVENT_READERS["ga4"], GA4)]
    again = [r["event_id"] for r in read(EVENT_READERS["ga4"], GA4)]
    lines = GA4.read_text(encoding="utf-8").splitlines()
    expected = [
        "ga4:" + hashlib.sha1(json.dumps(json.loads(line), sort_keys=True, default=str).encode()).hexdigest()
        for line in lines
    ]
    assert first == again == expected
    assert first[4] == first[5]
    assert len(set(first)) == 9


def ga4_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    value = pa.struct(
        [
            ("string_value", pa.string()),
            ("int_value", pa.int64()),
            ("float_value", pa.float64()),
            ("double_value", pa.float64()),
        ]
    )
    param = pa.list_(pa.struct([("key", pa.string()), ("value", value)]))
    schema = pa.schema(
        [
            ("event_date", pa.string()),
            ("event_timestamp", pa.int64()),
            ("event_name", pa.string()),
            ("event_params", param),
            ("user_id", pa.string()),
            ("user_pseudo_id", pa.string()),
            ("user_properties", param),
            ("platform", pa.string()),
            (
                "traffic_source",
                pa.struct([("name", pa.string()), ("medium", pa.string()), ("source", pa.string())]),
            ),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def ga4_row(micros: int, name: str, **extra: Any) -> dict[str, Any]:
    params = [
        {"key": "ga_session_id", "value": {"int_value": 1709283600}},
        {"key": "page_location", "value": {"string_value": "https://shop.example.com/"}},
        {"key": "engagement_time_msec", "value": {"int_value": 1500}},
        {"key": "value", "value": {"double_value": 12.5}},
    ]
    row = {"event_date": "20240301", "event_timestamp": micros, "event_name": name, "event_params": params}
    return {**row, "user_pseudo_id": "p-1", "platform": "WEB", **extra}


def test_ga4_parquet_reads_nested_params_with_row_numbers_across_batches(tmp_path: Path) -> None:
    base = 1_709_283_600_000_000
    path = ga4_parquet(
        tmp_path / "events.parquet",
        [
            ga4_row(base, "page_view", traffic_source={"name": "(direct)", "medium": None, "source": "(direct)"}),
            ga4_row(base + 1_000_000, "scroll", user_id="cust-1"),
            ga4_row(base + 2_000_000, "click"),
            ga4_row(base + 2_000_000, "click"),
            ga4_row(
                base + 3_000_000,
                "purchase",
                user_properties=[{"key": "tier", "value": {"string_value": "gold"}}],
            ),
        ],
    )
    batches = list(EVENT_READERS["ga4"](path, ReadOptions(batch_rows=2)))
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [b.num_rows for b in batches] == [2, 2, 1]
    assert pick(rows, "_row", "event", "customer_id", "session_id", "ts") == [
        (1, "page_view", "p-1", "1709283600", "2024-03-01T09:00:00+00:00"),
        (2, "scroll", "cust-1", "1709283600", "2024-03-01T09:00:01+00:00"),
        (3, "click", "p-1", "1709283600", "2024-03-01T09:00:02+00:00"),
        (4, "click", "p-1", "1709283600", "2024-03-01T09:00:02+00:00"),
        (5, "purchase", "p-1", "1709283600", "2024-03-01T09:00:03+00:00"),
    ]
    assert props(rows[0]) == {
        "page_location": "https://shop.example.com/",
        "engagement_time_msec": 1500,
        "value": 12.5,
        "traffic_source": {"name": "(direct)", "source": "(direct)"},
    }
    assert props(rows[4])["user_properties"] == {"tier": "gold"}
    assert rows[2]["event_id"] == rows[3]["event_id"] != rows[1]["event_id"]
    assert detect_format(path) == "ga4"


def test_parquet_without_ga4_columns_is_plain_parquet_and_not_a_ga4_export(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"customer_id": ["a"], "ts": ["2024-03-01T09:00:00Z"], "event": ["x"]}), path)
    assert detect_format(path) == "parquet"
    with pytest.raises(ReaderError, match="not a GA4 export: no column event_name, event_timestamp; columns are"):
        read(EVENT_READERS["ga4"], path)


# Mixpanel and Amplitude --------------------------------------------------------------------------------


def test_mixpanel_maps_insert_id_distinct_id_and_time_and_keeps_other_properties() -> None:
    rows = read(EVENT_READERS["mixpanel"], DATA / "mixpanel_export.jsonl")
    assert pick(rows, "_row", "event_id", "customer_id", "anonymous_id", "ts", "event", "channel") == [
        (1, "mx-1", "cust-42", None, "1709283600", "Viewed Product", "web"),
        (2, "mx-2", None, "18e0f2a1-dev", "1709283660123", "Signed Up", None),  # $device: id, time in ms
        (3, None, "cust-42", None, "1709283720", "Added To Cart", None),  # no $insert_id: fingerprinted later
        (4, None, None, None, None, None, None),
    ]
    assert props(rows[0]) == {"product": "Trail Tent 2", "$browser": "Firefox"}
    assert rows[3]["_error"].startswith("not valid JSON: ")
    assert rows[3]["_field"] == "line"


def test_amplitude_maps_ids_session_platform_and_utc_event_time() -> None:
    rows = read(EVENT_READERS["amplitude"], DATA / "amplitude_export.json")
    assert pick(rows, "event_id", "customer_id", "anonymous_id", "session_id", "event", "channel") == [
        ("amp-ins-1", "cust-42", "dev-a", "1709283600000", "app_opened", "ios"),
        ("6f1c1f2e-0000-4000-8000-000000000002", "dev-b", "dev-b", None, "search", "web"),  # uuid; session -1
        ("amp-ins-3", "cust-42", "dev-a", "1709283600000", "order_placed", "android"),
    ]
    assert [r["ts"] for r in rows] == [
        "2024-03-01T09:00:00.123456+00:00",
        "2024-03-01T09:01:30+00:00",
        "2024-03-01T09:05:00.500000+00:00",
    ]
    assert props(rows[0]) == {"screen": "home", "user_properties": {"plan": "pro"}}
    assert props(rows[1]) == {"query": "tent"}


# Zendesk and Intercom ----------------------------------------------------------------------------------


def test_zendesk_tickets_become_created_events_and_solved_events_once_solved_or_closed() -> None:
    rows = read(EVENT_READERS["zendesk"], ZENDESK)
    assert pick(rows, "_row", "event_id", "customer_id", "ts", "event", "channel") == [
        (1, "zendesk:ticket:101:created", "9001", "2024-03-02T08:15:00Z", "ticket_created", "email"),
        (1, "zendesk:ticket:101:solved", "9001", "2024-03-03T09:30:00Z", "ticket_solved", "email"),
        (2, "zendesk:ticket:102:created", "9002", "2024-03-04T14:00:00Z", "ticket_created", "phone"),
        (2, "zendesk:ticket:102:solved", "9002", "2024-03-06T16:20:00Z", "ticket_solved", "phone"),
        (3, "zendesk:ticket:103:created", "9003", "2024-03-05T09:00:00Z", "ticket_created", "web"),
        (4, "zendesk:ticket:104:created", "9004", "2024-03-06T11:00:00Z", "ticket_created", "chat"),
    ]
    assert props(rows[2]) == {
        "ticket_id": 102,
        "subject": "Tent pole arrived broken",
        "status": "closed",
        "priority": "high",
        "tags": ["damaged"],
        "via": {"channel": "voice", "source": {"from": {}, "to": {}, "rel": None}},
    }


def test_zendesk_reads_one_ticket_a_line_and_a_plain_array(tmp_path: Path) -> None:
    tickets = json.loads(ZENDESK.read_text(encoding="utf-8"))["tickets"][:2]
    lines = write(tmp_path / "t.jsonl", "".join(json.dumps(t) + "\n" for t in tickets) + "{oops\n")
    array = write(tmp_path / "t.json", json.dumps(tickets, indent=1))
    by_line = read(EVENT_READERS["zendesk"], lines)
    assert pick(by_line, "_row", "event", "_error") == [
        (1, "ticket_created", None),
        (1, "ticket_solved", None),
        (2, "ticket_created", None),
        (2, "ticket_solved", None),
        (3, None, by_line[4]["_error"]),
    ]
    assert by_line[4]["_error"].startswith("not valid JSON: ")
    assert pick(read(EVENT_READERS["zendesk"], array), "_row", "event_id") == pick(by_line[:4], "_row", "event_id")


def test_zendesk_ratings_good_is_csat_5_bad_is_1_and_offered_or_unoffered_give_no_row() -> None:
    rows = read(FEEDBACK_READERS["zendesk"], ZENDESK)
    assert list(rows[0]) == [*META_COLUMNS, *FEEDBACK_COLUMNS]
    assert pick(rows, "_row", "response_id", "customer_id", "ts", "metric", "score", "channel") == [
        (1, "zendesk:rating:5001", "9001", "2024-03-03T12:00:00Z", "csat", "5", "email"),
        (2, "zendesk:rating:5002", "9002", "2024-03-06T16:20:00Z", "csat", "1", "phone"),  # ticket's update
    ]
    assert [r["comment"] for r in rows] == [
        "Quick and kind, thanks!",
        "Took three calls to get a replacement.",
    ]


def test_zendesk_satisfaction_ratings_export_and_an_unknown_score_is_an_error_row(tmp_path: Path) -> None:
    ratings = [
        {"id": 7, "score": "good", "comment": "", "requester_id": 11, "ticket_id": 3},
        {"id": 8, "score": "unoffered", "requester_id": 12, "ticket_id": 4},
        {"id": 9, "score": "great", "requester_id": 13, "ticket_id": 5},
    ]
    for rating in ratings:
        rating["created_at"] = "2024-03-01T10:00:00Z"
    # An API page saved as is: one line, so records are numbered by their place in the array.
    path = write(tmp_path / "ratings.json", json.dumps({"satisfaction_ratings": ratings, "next_page": None}))
    rows = read(FEEDBACK_READERS["zendesk"], path)
    assert pick(rows, "_row", "response_id", "customer_id", "score", "comment", "_error", "_field") == [
        (1, "zendesk:rating:7", "11", "5", None, None, None),
        (3, "zendesk:rating:9", "13", None, None, "unknown satisfaction score: 'great'", "score"),
    ]
    assert detect_feedback_format(path) == "zendesk"


def test_intercom_rated_conversations_are_csat_with_the_customer_from_the_rating_or_the_contacts() -> None:
    rows = read(FEEDBACK_READERS["intercom"], INTERCOM)
    assert pick(rows, "_row", "response_id", "customer_id", "ts", "metric", "score", "channel", "comment") == [
        (1, "intercom:1911149811", "65e1a0f0aa11", "1709290000", "csat", "5", "chat", "Sorted in minutes"),
        (2, "intercom:1911149812", "65e1a0f0bb22", "1709379000", "csat", "2", "chat", None),
    ]


# Qualtrics ---------------------------------------------------------------------------------------------


def test_qualtrics_gives_one_row_per_answered_metric_from_row_4_with_question_texts_read() -> None:
    rows = read(FEEDBACK_READERS["qualtrics"], QUALTRICS)
    assert pick(rows, "_row", "response_id", "customer_id", "ts", "metric", "score") == [
        (4, "R_1a2B3c4D5e6F7g8:Q1", "cust-1", "2024-03-01T10:15:22-07:00", "nps", "9"),
        (4, "R_1a2B3c4D5e6F7g8:Q2", "cust-1", "2024-03-01T10:15:22-07:00", "csat", "5"),
        (4, "R_1a2B3c4D5e6F7g8:Q3", "cust-1", "2024-03-01T10:15:22-07:00", "ces", "6"),
        (
            5,
            "R_2b3C4d5E6f7G8h9:Q1",
            "bob@example.com",
            "2024-03-02T18:02:12-07:00",
            "nps",
            "11",
        ),  # out of range
        (5, "R_2b3C4d5E6f7G8h9:Q3", "bob@example.com", "2024-03-02T18:02:12-07:00", "ces", "2"),  # Q2 blank
        (6, "R_3c4D5e6F7g8H9i0:Q1", "cust-3", "2024-03-03T07:41:05-07:00", "nps", "3"),
        (6, "R_3c4D5e6F7g8H9i0:Q2", "cust-3", "2024-03-03T07:41:05-07:00", "csat", "1"),
        (
            7,
            "R_4d5E6f7G8h9I0j1:Q2",
            "cust-4",
            "2024-03-04T12:01:09-07:00",
            "csat",
            "4",
        ),  # Q3 -99: not answered
    ]


def test_qualtrics_comment_goes_with_the_first_metric_row_so_it_counts_once() -> None:
    rows = read(FEEDBACK_READERS["qualtrics"], QUALTRICS)
    assert [r["comment"] for r in rows] == [
        "Fast delivery, friendly driver",
        None,
        None,
        None,
        None,
        'Return label never arrived, "lost" twice.\nWaited two weeks for a refund.',
        None,
        None,
    ]


def test_qualtrics_columns_option_names_the_questions_instead_of_the_texts() -> None:
    rows = read(FEEDBACK_READERS["qualtrics"], QUALTRICS, nps="Q1", comment="Q4", customer_id="RecipientEmail")
    assert pick(rows, "_row", "customer_id", "metric", "score") == [
        (4, "ann@example.com", "nps", "9"),
        (5, "bob@example.com", "nps", "11"),
        (6, "cat@example.com", "nps", "3"),
    ]


def test_qualtrics_legacy_single_header_row_is_read_as_plain_csv(tmp_path: Path) -> None:
    path = write(
        tmp_path / "legacy.csv",
        "ResponseId,RecordedDate,ExternalReference,How likely are you to recommend us?,csat\n"
        "R_9,2024-03-01 10:00:00,cust-9,10 - Extremely likely,4\n"
        "R_10,2024-03-02 11:00:00,cust-10,,2\n",
    )
    rows = read(FEEDBACK_READERS["qualtrics"], path)
    assert pick(rows, "_row", "response_id", "customer_id", "ts", "metric", "score") == [
        (2, "R_9:How likely are you to recommend us?", "cust-9", "2024-03-01 10:00:00", "nps", "10"),
        (2, "R_9:csat", "cust-9", "2024-03-01 10:00:00", "csat", "4"),
        (3, "R_10:csat", "cust-10", "2024-03-02 11:00:00", "csat", "2"),
    ]
    assert detect_feedback_format(path) == "csv"


def test_qualtrics_without_a_metric_question_names_the_questions(tmp_path: Path) -> None:
    lines = QUALTRICS.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].replace("Q1,Q1_NPS_GROUP,Q2,Q3,Q4", "Q1,Q1_NPS_GROUP,Q2,Q3,Q9")
    texts = lines[1].split(",How likely")[0] + ",Age,Group,Colour,Size,Shoe"
    path = write(tmp_path / "s.csv", "\n".join([header, texts, *lines[2:]]))
    with pytest.raises(ReaderError, match=r"no NPS, CSAT or CES question found; questions are: .*Q1: 'Age'"):
        read(FEEDBACK_READERS["qualtrics"], path)


# Plain feedback CSV ------------------------------------------------------------------------------------


def test_feedback_csv_rows_are_spreadsheet_rows_and_a_short_row_is_an_error() -> None:
    path = DATA / "feedback_long.csv"
    rows = read(FEEDBACK_READERS["csv"], path)
    assert pick(rows, "_row", "response_id", "customer_id", "metric", "score", "touchpoint", "_error") == [
        (2, "r1", "cust-1", "nps", "9", "refund_email", None),
        (3, None, "cust-2", "csat", "4", None, None),
        (4, "r3", "cust-3", "ces", None, None, None),  # two lines, one row; no score: the pipeline says so
        (5, None, None, None, None, None, "wrong number of cells: expected 7, got 3"),
        (7, "r5", "cust-5", "rating", "4", None, None),  # row 6 is blank
    ]
    assert rows[2]["comment"] == "Long wait,\nthen a great fix"
    assert rows[1]["comment"] is None


def test_feedback_csv_columns_option_maps_names_and_a_missing_column_lists_the_columns(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "f.csv", "user,when,kind,value\nu1,2024-03-01,nps,7\n")
    rows = read(FEEDBACK_READERS["csv"], path, customer_id="user", ts="when", metric="kind", score="value")
    assert pick(rows, "customer_id", "ts", "metric", "score") == [("u1", "2024-03-01", "nps", "7")]
    with pytest.raises(ReaderError, match=r"f.csv: column 'rating' \(for score\) not found; columns are: user, when"):
        read(FEEDBACK_READERS["csv"], path, score="rating")
    with pytest.raises(ReaderError, match="no column for customer_id, ts, metric, score; columns are: user"):
        read(FEEDBACK_READERS["csv"], path)


def test_wide_feedback_csv_gives_one_row_per_answered_metric(tmp_path: Path) -> None:
    path = write(
        tmp_path / "wide.csv",
        "response_id,customer_id,ts,nps,csat,ces,comment\n"
        "w1,c1,2024-03-01T10:00:00Z,10,5,,Great\n"
        ",c2,2024-03-01T11:00:00Z,,2,6,\n",
    )
    rows = read(FEEDBACK_READERS["csv"], path)
    assert pick(rows, "_row", "response_id", "customer_id", "metric", "score", "comment") == [
        (2, "w1:nps", "c1", "nps", "10", "Great"),
        (2, "w1:csat", "c1", "csat", "5", None),
        (3, None, "c2", "csat", "2", None),
        (3, None, "c2", "ces", "6", None),
    ]


def test_wide_feedback_csv_with_mapped_metric_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "id,customer_id,ts,Q1\nw1,c1,2024-03-01,8\n")
    rows = read(FEEDBACK_READERS["csv"], path, nps="Q1", response_id="id")
    assert pick(rows, "response_id", "metric", "score") == [("w1", "nps", "8")]  # one metric: no suffix


# Detection and the whole pipeline ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ga4_events.jsonl", "ga4"),
        ("mixpanel_export.jsonl", "mixpanel"),
        ("amplitude_export.json", "amplitude"),
        ("zendesk_tickets.json", "zendesk"),
    ],
)
def test_event_format_is_detected_from_the_first_record(name: str, expected: str) -> None:
    assert detect_format(DATA / name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"event_name": "x", "event_timestamp": 1}]', "ga4"),
        ('{"event": "x", "properties": {"$insert_id": "1"}}', "mixpanel"),
        ('{"event": "x", "properties": {"plan": "free"}}', "jsonl"),
        ('{"event_type": "x", "event_time": "2024-03-01 10:00:00"}', "amplitude"),
        ('{"id": 1, "via": {"channel": "web"}, "requester_id": 2}', "zendesk"),
        ('{"messageId": "m", "type": "track"}', "segment"),
    ],
)
def test_json_flavours(tmp_path: Path, text: str, expected: str) -> None:
    assert detect_format(write(tmp_path / "x.json", text + "\n")) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qualtrics_survey.csv", "qualtrics"),
        ("feedback_long.csv", "csv"),
        ("zendesk_tickets.json", "zendesk"),
        ("intercom_conversations.json", "intercom"),
    ],
)
def test_feedback_format_is_detected(name: str, expected: str) -> None:
    assert detect_feedback_format(DATA / name) == expected


def test_unknown_feedback_json_is_an_error_naming_the_formats(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match=r"cannot tell the feedback format.*csv, qualtrics, zendesk, intercom"):
        detect_feedback_format(write(tmp_path / "x.json", '{"hello": 1}\n'))


def test_ga4_export_ingests_once_with_duplicates_and_bad_rows_counted(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    first = ws.ingest_events([GA4], fmt="auto")
    assert (first.read, first.accepted, first.duplicates, first.quarantined) == (10, 7, 1, 2)
    again = ws.ingest_events([GA4], fmt="auto")
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 8, 2)
    reasons = {q["reason"]: q["count"] for q in ws.quarantine()}
    assert reasons == {"no customer id": 1, "unparseable timestamp": 1}

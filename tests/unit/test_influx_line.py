"""Line-protocol formatting and InfluxQL quoting (no InfluxDB needed)."""

from __future__ import annotations

import pytest

from footfall.influx import (
    InfluxError,
    format_field,
    line,
    quote_ident,
    quote_literal,
    series_of,
)


def test_plain_point_with_sorted_tags_and_time() -> None:
    point = line("minute", {"site": "s1", "device": "mobile"}, {"pageviews": 3}, 1_700_000_000_000)
    assert point == "minute,device=mobile,site=s1 pageviews=3i 1700000000000"


def test_point_without_time_or_tags() -> None:
    assert line("m", {}, {"v": 1.5}) == "m v=1.5"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0i"),
        (-42, "-42i"),
        (2**63 - 1, "9223372036854775807i"),
        (1.0, "1.0"),
        (0.1, "0.1"),
        (-2.5e-7, "-2.5e-07"),
        (1e20, "1e+20"),
        (True, "true"),
        (False, "false"),
        ("plain", '"plain"'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\path", r'"C:\\path"'),
        ("two\nlines", '"two\nlines"'),
        ("", '""'),
    ],
)
def test_field_values(value: bool | int | float | str, expected: str) -> None:
    assert format_field(value) == expected


def test_bool_is_not_written_as_integer() -> None:
    assert line("m", {}, {"ok": True, "n": 1}) == "m ok=true,n=1i"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        format_field(value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_integers_outside_int64_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="int64"):
        format_field(value)


def test_unsupported_field_type() -> None:
    with pytest.raises(TypeError, match="bytes"):
        format_field(b"raw")  # type: ignore[arg-type]


def test_measurement_escapes_comma_and_space_only() -> None:
    assert line("page views,all", {}, {"v": 1}) == r"page\ views\,all v=1i"
    assert line("a=b", {}, {"v": 1}) == "a=b v=1i"


def test_tag_keys_values_and_field_keys_escape_comma_equals_space() -> None:
    point = line(
        "m",
        {"the page": "/a,b=c d", "k=1": "x"},
        {"time on page": 2.0, "a,b": "v"},
    )
    assert point == (r"m,k\=1=x,the\ page=/a\,b\=c\ d time\ on\ page=2.0,a\,b=" + '"v"')


def test_quotes_and_lone_backslashes_in_tags_pass_through() -> None:
    # InfluxDB 1.x keeps these bytes as they are (checked against the server in integration).
    assert line("m", {"t": 'say "x"', "p": r"a\b", "q": "a\\\\b"}, {"v": 1}) == (
        r'm,p=a\b,q=a\\b,t=say\ "x" v=1i'
    )


def test_unicode_is_written_as_is() -> None:
    assert line("m", {"city": "Zürich 東京"}, {"v": 1}) == r"m,city=Zürich\ 東京 v=1i"


def test_empty_tag_values_are_left_out() -> None:
    assert line("m", {"a": "", "b": "x"}, {"v": 1}) == "m,b=x v=1i"


def test_none_fields_are_left_out_but_one_must_remain() -> None:
    assert line("m", {}, {"rate": None, "n": 2}) == "m n=2i"
    with pytest.raises(ValueError, match="no fields"):
        line("m", {}, {"rate": None})
    with pytest.raises(ValueError, match="no fields"):
        line("m", {"a": "b"}, {})


@pytest.mark.parametrize(
    ("measurement", "tags", "fields"),
    [
        ("", {}, {"v": 1}),
        ("m", {"": "x"}, {"v": 1}),
        ("m", {}, {"": 1}),
        ("two\nlines", {}, {"v": 1}),
        ("m", {"t": "a\nb"}, {"v": 1}),
        ("m", {"t": "cr\r"}, {"v": 1}),
        ("m", {}, {"a\nb": 1}),
        ("#comment", {}, {"v": 1}),
        ("m", {"time": "x"}, {"v": 1}),
        ("m", {}, {"time": 1}),
    ],
)
def test_invalid_names_are_refused(
    measurement: str, tags: dict[str, str], fields: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="line protocol"):
        line(measurement, tags, fields)


@pytest.mark.parametrize("text", ["end\\", "a\\,b", "a\\ b", "a\\=b"])
def test_backslash_before_a_separator_is_refused(text: str) -> None:
    # 1.x has no spelling for these: "\\," is read as "\" + separator, "\\\," as "\\,".
    with pytest.raises(ValueError, match="backslash"):
        line("m", {"t": text}, {"v": 1})
    with pytest.raises(ValueError, match="backslash"):
        line(text, {}, {"v": 1})
    with pytest.raises(ValueError, match="backslash"):
        line("m", {}, {text: 1})


def test_time_must_be_an_integer() -> None:
    with pytest.raises(TypeError, match="time"):
        line("m", {}, {"v": 1}, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="time"):
        line("m", {}, {"v": 1}, True)


def test_influxql_quoting() -> None:
    assert quote_ident("footfall") == '"footfall"'
    assert quote_ident('we"ird\\db') == r'"we\"ird\\db"'
    assert quote_literal("it's") == r"'it\'s'"
    assert quote_literal("a\\b") == r"'a\\b'"


def test_series_of_flattens_results_and_fills_missing_keys() -> None:
    payload = {
        "results": [
            {"statement_id": 0, "series": [{"columns": ["name"]}]},
            {"statement_id": 1},
            {
                "statement_id": 2,
                "series": [
                    {
                        "name": "m",
                        "tags": {"site": "a"},
                        "columns": ["time", "v"],
                        "values": [[1, 2]],
                    }
                ],
            },
        ]
    }
    assert series_of(payload) == [
        {"name": "", "columns": ["name"], "values": []},
        {"name": "m", "columns": ["time", "v"], "values": [[1, 2]], "tags": {"site": "a"}},
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"error": "bad auth"},
        {"results": [{"statement_id": 0, "error": "database not found: x"}]},
        ["not", "a", "dict"],
    ],
)
def test_series_of_raises_on_errors(payload: object) -> None:
    with pytest.raises(InfluxError):
        series_of(payload)

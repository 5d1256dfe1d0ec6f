"""The result contract without a database: what makes a row an alert result, and what does not."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.errors import ResultContractError
from sentinel.result import parse_result_row


@pytest.mark.parametrize(
    ("row", "status"),
    [
        ({"status": "OK"}, "OK"),
        ({"Status": "ok"}, "OK"),
        ({"STATUS": " Alert\n"}, "ALERT"),
    ],
)
def test_status_is_read_in_any_case(row: dict[str, Any], status: str) -> None:
    assert parse_result_row(row).status == status


def test_contract_columns_leave_context_and_other_names_are_kept() -> None:
    result = parse_result_row(
        {"STATUS": "ALERT", "Actual_Value": 12.5, "THRESHOLD": 10, "Region": "eu", "n": None}
    )
    assert (result.actual_value, result.threshold) == (12.5, 10)
    assert result.context == {"Region": "eu", "n": None}


def test_a_second_status_column_in_another_case_is_context() -> None:
    result = parse_result_row({"status": "OK", "STATUS": "ALERT"})
    assert (result.status, result.context) == ("OK", {"STATUS": "ALERT"})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (None, "query returned no rows"),
        ({}, "query result has no 'status' column (columns: none)"),
        ({"a": 1, "b": 2}, "query result has no 'status' column (columns: a, b)"),
        ({"status": "maybe"}, "status must be 'ALERT' or 'OK', got 'maybe'"),
        ({"status": None}, "status must be 'ALERT' or 'OK', got NULL"),
        ({"status": 1}, "status must be 'ALERT' or 'OK', got 1 (int)"),
        ({"status": b"OK"}, "status must be 'ALERT' or 'OK', got b'OK' (bytes)"),
        ({"status": "x" * 100}, "status must be 'ALERT' or 'OK', got '" + "x" * 60 + "...'"),
    ],
)
def test_broken_rows_say_which_rule_they_break(row: dict[str, Any] | None, message: str) -> None:
    with pytest.raises(ResultContractError) as caught:
        parse_result_row(row)
    assert str(caught.value) == message

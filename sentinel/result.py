"""The result contract: how one row from an alert query becomes a :class:`QueryResult`.

Column names are matched without regard to case because databases disagree about it: PostgreSQL
folds unquoted names to lower case, Snowflake and Oracle to upper case, and an alert author should
not have to quote ``status`` to make the same query work on both. Every other column is context and
keeps its name exactly as the database returned it, because that is what the author will look for
in a notification.
"""

from __future__ import annotations

from typing import Any

from sentinel.errors import NoDataError, ResultContractError
from sentinel.models import QueryResult, alert_or_ok

_CONTRACT_COLUMNS = ("status", "actual_value", "threshold")
_MAX_SHOWN = 60


def parse_result_row(row: dict[str, Any] | None) -> QueryResult:
    """Read the first row of an alert query, or say precisely which part of the contract it broke.

    Raises :class:`~sentinel.errors.ResultContractError` for no row, no ``status`` column, or a
    status that is not 'ALERT' or 'OK' in any case (NULL and non-strings included).
    """
    if row is None:
        raise NoDataError("query returned no rows")

    found: dict[str, str] = {}  # contract name -> column name as returned
    context: dict[str, Any] = {}
    for column in row:
        folded = column.lower()
        if folded in _CONTRACT_COLUMNS and folded not in found:
            found[folded] = column
        else:
            context[column] = row[column]

    if "status" not in found:
        columns = ", ".join(row) or "none"
        raise ResultContractError(f"query result has no 'status' column (columns: {columns})")

    status = row[found["status"]]
    normalised = alert_or_ok(status)
    if normalised is None:
        raise ResultContractError(f"status must be 'ALERT' or 'OK', got {_show(status)}")

    # Every field is already checked (the status normalised above): no second validation.
    return QueryResult.model_construct(
        status=normalised,
        actual_value=row[found["actual_value"]] if "actual_value" in found else None,
        threshold=row[found["threshold"]] if "threshold" in found else None,
        context=context,
    )


def _show(value: object) -> str:
    """A status value as a message shows it: strings quoted and cut short, NULL as NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "..."
        return f"'{text}'"
    return f"{value!r} ({type(value).__name__})"


__all__ = ["parse_result_row"]

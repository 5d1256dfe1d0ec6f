"""The SQL guard: an alert query must be one statement that only reads.

The check parses the query with sqlglot in the dialect of the database it will run on, so it sees
what the database will see: comments and string literals cannot hide a second statement, and a
write buried in a CTE or subquery is found by walking the whole tree. It is the first of two fences;
the second is the read-only transaction with a statement timeout that :mod:`sentinel.database`
runs every query in, so a function or view the parser cannot see into still cannot change data.

The function denylist below is defence in depth, not the fence itself: it names well-known
built-ins whose whole purpose is a side effect (killing sessions, taking locks, bumping sequences,
reading files into the database, running SQL on another server) and that a read-only transaction
does not always stop. ``pg_sleep`` and MySQL's ``SLEEP`` stay allowed: the timeout bounds them.

sqlglot is imported inside the functions because importing it costs a noticeable part of the
CLI's start-up time, and most commands never check a query.
"""

# sqlglot is imported where it is used, never at the top: see the module docstring.

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sentinel.errors import UnsafeQueryError
from sentinel.sql_dialects import dialect_for_url

if TYPE_CHECKING:
    from sqlglot import exp

#: Built-in functions refused anywhere in a query because calling them *is* a side effect.
SIDE_EFFECT_FUNCTIONS: frozenset[str] = frozenset(
    {
        # PostgreSQL: other sessions and the server itself
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_promote",
        "pg_notify",
        "pg_stat_reset",
        "pg_stat_reset_shared",
        "pg_stat_reset_single_table_counters",
        "set_config",
        # PostgreSQL: sequences (nextval/setval write even in a read-only transaction's spirit)
        "nextval",
        "setval",
        # PostgreSQL: large objects read server files into the database and write them back out
        "lo_import",
        "lo_export",
        "lo_unlink",
        "lo_create",
        "lo_creat",
        "lo_from_bytea",
        "lo_put",
        "lo_truncate",
        "lowrite",
        # PostgreSQL: dblink runs arbitrary SQL, writes included, on another connection
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_send_query",
        "dblink_open",
        # PostgreSQL: advisory locks outlive the query and block other clients
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
        "pg_advisory_unlock",
        "pg_advisory_unlock_shared",
        "pg_advisory_unlock_all",
        # MySQL / MariaDB: named locks
        "get_lock",
        "release_lock",
        "release_all_locks",
        # SQLite: loads native code into the process
        "load_extension",
    }
)

# Statement and clause types that are never part of a read, wherever they appear in the tree.
# Looked up by name so that a class missing from an older sqlglot does not break the import.
_FORBIDDEN_NODE_NAMES = (
    "DDL",
    "DML",
    "Create",
    "Drop",
    "Alter",
    "TruncateTable",
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Copy",
    "LoadData",
    "Grant",
    "Revoke",
    "Set",
    "Pragma",
    "Attach",
    "Detach",
    "Install",
    "Use",
    "Transaction",
    "Commit",
    "Rollback",
    "Execute",
    "Declare",
    "Kill",
    "Analyze",
    "Cache",
    "Uncache",
    "Refresh",
    "Comment",
    "Put",
    "Get",
    "Export",
    "StoredProcedure",
    "Block",
    "IfBlock",
    "WhileBlock",
    "NextValueFor",
)

_KIND_NAMES = {
    "Select": "SELECT",
    "Union": "UNION",
    "Intersect": "INTERSECT",
    "Except": "EXCEPT",
    "TruncateTable": "TRUNCATE",
    "Transaction": "BEGIN",
    "LoadData": "LOAD DATA",
    "NextValueFor": "NEXT VALUE FOR",
    "Execute": "EXECUTE",
}

_CLASS_REPR = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")
_COMMAND_FALLBACK = "Falling back to parsing as a 'Command'"


class _DropCommandFallbackWarning(logging.Filter):
    """sqlglot logs a warning before parsing unknown syntax as a Command; the guard refuses those
    with a message of its own, so the warning would only be noise above it on the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _COMMAND_FALLBACK not in record.getMessage()


_filter_installed = False


def check_query(sql: str, dialect: str | None) -> None:
    """Refuse anything but a single read-only statement, with a one-line reason.

    Raises :class:`~sentinel.errors.UnsafeQueryError`. Results are memoised per (sql, dialect):
    the same handful of queries is checked on every scheduled run. A config's queries were
    checked when it loaded (``refusals``, through the on-disk verdict cache), so they are
    memoised already; a query met only here is parsed.
    """
    reason = _refusal(sql, dialect)
    if reason is not None:
        raise UnsafeQueryError(reason)


def refusals(queries: Iterable[str], dialect: str | None) -> dict[str, str]:
    """The refused queries among ``queries``, each with its reason; the others are safe.

    One look-up in the on-disk verdict cache (:mod:`sentinel.guard_cache`) for all of them, and
    a sqlglot parse only for those no earlier process has checked: a config's load checks its
    queries through here, so a start with unchanged queries never imports sqlglot.
    """
    texts = list(dict.fromkeys(queries))
    _PRIMED.update(_learn(texts, dialect))
    try:
        return {sql: reason for sql in texts if (reason := _refusal(sql, dialect)) is not None}
    finally:
        _PRIMED.clear()


#: Verdicts looked up by ``refusals`` in one batch, each taken by ``_refusal`` (which keeps it).
_PRIMED: dict[tuple[str, str | None], str | None] = {}


@functools.lru_cache(maxsize=65536)  # deployments have thousands of alert queries
def _refusal(sql: str, dialect: str | None) -> str | None:
    """The reason to refuse ``sql``, or None. Returns instead of raising so lru_cache keeps it."""
    try:
        return _PRIMED.pop((sql, dialect))
    except KeyError:  # not in a batch (or another thread's batch took it): check it here
        return _verdict(sql, dialect)


def _learn(queries: list[str], dialect: str | None) -> dict[tuple[str, str | None], str | None]:
    """Verdicts from the on-disk cache, and from sqlglot (then stored) for those it lacks."""
    from sentinel.guard_cache import VerdictCache, default_path, guard_version, verdict_key

    cache = VerdictCache(default_path(), guard_version())
    keys = {sql: verdict_key(cache.version, dialect, sql) for sql in queries}
    stored = cache.get_many(keys.values())
    verdicts: dict[tuple[str, str | None], str | None] = {}
    fresh: dict[str, str | None] = {}
    for sql, key in keys.items():
        if key in stored:
            verdicts[sql, dialect] = stored[key]
        else:
            verdicts[sql, dialect] = fresh[key] = _verdict(sql, dialect)
    cache.put_many(fresh)
    return verdicts


def _verdict(sql: str, dialect: str | None) -> str | None:
    """The reason to refuse ``sql``, or None: the check itself, by sqlglot."""
    statements = _parse(sql, dialect)
    if isinstance(statements, str):
        return statements
    if len(statements) > 1:
        kinds = "; ".join(_kind(s) for s in statements)
        return f"query must be a single statement, found {len(statements)}: {kinds}"
    statement = statements[0]
    if not _is_read(statement):
        return (
            f"only read queries (SELECT, WITH ... SELECT, UNION) are allowed, "
            f"got {_kind(statement)}"
        )
    return _forbidden_inside(statement)


def _parse(sql: str, dialect: str | None) -> list[exp.Expr] | str:
    """The non-empty statements of ``sql``, or the reason it cannot be checked at all."""
    import sqlglot
    from sqlglot.errors import ParseError, SqlglotError

    _quiet_command_fallback()
    if not sql.strip():
        return "query is empty"
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except ParseError as exc:
        return f"cannot parse query as {dialect or 'generic'} SQL: {_parse_error_text(exc)}"
    except (SqlglotError, RecursionError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        return f"cannot parse query as {dialect or 'generic'} SQL: {lines[0]}"
    # Empty statements come from trailing or doubled semicolons and comment-only input.
    statements = [s for s in parsed if s is not None]
    return statements or "query is empty (only comments or semicolons)"


def _is_read(node: exp.Expr) -> bool:
    """SELECT, a set operation of reads, or a parenthesised read. WITH is part of the SELECT."""
    from sqlglot import exp

    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, exp.Select):
        return True
    if isinstance(node, exp.SetOperation):
        return _is_read(node.left) and _is_read(node.right)
    return False


def _forbidden_inside(statement: exp.Expr) -> str | None:
    """The first write, lock, unparsed command or side-effecting call anywhere in the tree."""
    for node in statement.walk():
        cls = type(node)
        role = _ROLES[cls] if cls in _ROLES else _role(cls)
        if role is None:
            continue
        if role == "command":
            return f"query contains a statement the parser does not understand ({_kind(node)})"
        if role == "into":
            return "SELECT ... INTO writes a table or variables; not allowed in an alert query"
        if role == "lock":
            return "locking clauses (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE) are not allowed"
        if role == "forbidden":
            return f"query contains a {_kind(node)} statement; alert queries may only read"
        name = _function_name(node)
        if name in SIDE_EFFECT_FUNCTIONS:
            return f"function {name}() has side effects and is not allowed in an alert query"
    return None


#: ``_role`` of each node class met so far.
_ROLES: dict[type, str | None] = {}


def _role(cls: type) -> str | None:
    """What a node of this class means to the guard, tested in the order the checks are made;
    None for the nodes that are harmless, most of every tree. Kept per class, so a walk asks
    one dict per node instead of five isinstance checks."""
    _ROLES[cls] = role = _classify(cls)
    return role


def _classify(cls: type) -> str | None:
    from sqlglot import exp

    forbidden = tuple(
        c for name in _FORBIDDEN_NODE_NAMES if isinstance(c := getattr(exp, name, None), type)
    )
    for role, classes in (
        ("command", exp.Command),
        ("into", exp.Into),
        ("lock", exp.Lock),
        ("forbidden", forbidden),
        ("anonymous", exp.Anonymous),
    ):
        if issubclass(cls, classes):
            return role
    if issubclass(cls, exp.Func):
        # A built-in's name is its class's: only the side-effecting ones need a second look.
        return "function" if _class_function_name(cls) in SIDE_EFFECT_FUNCTIONS else None
    return None


def _function_name(node: exp.Expr) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return _class_function_name(type(node))


def _class_function_name(cls: type) -> str:
    names = cls.sql_names()  # type: ignore[attr-defined]
    return str(names[0]).lower() if names else str(cls.__name__).lower()


def _kind(node: exp.Expr) -> str:
    """A short, human name for a statement: DELETE, CREATE TABLE, CALL ..."""
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    name = type(node).__name__
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if name in _KIND_NAMES:
        return _KIND_NAMES[name]
    if isinstance(node, (exp.Create, exp.Drop)):
        kind = node.args.get("kind")
        return f"{name.upper()} {kind}".strip() if kind else name.upper()
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)):
        return name.upper()
    try:
        words = node.sql(unsupported_level=ErrorLevel.IGNORE).split(None, 1)
    except Exception:  # a name for a message must never fail the check itself
        words = []
    return words[0].upper() if words else name.upper()


def _parse_error_text(exc: Any) -> str:
    """One line from sqlglot's multi-line, ANSI-highlighted parse error."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else "syntax error"
    first = errors[0]
    description = _CLASS_REPR.sub(r"\1", str(first.get("description") or "syntax error"))
    near = (str(first.get("highlight") or "")).strip()
    where = f" at line {first.get('line')}, column {first.get('col')}"
    return f"{description}{where}" + (f" near '{near[:40]}'" if near else "")


def _quiet_command_fallback() -> None:
    global _filter_installed  # noqa: PLW0603 - install the logging filter once per process
    if not _filter_installed:
        logging.getLogger("sqlglot").addFilter(_DropCommandFallbackWarning())
        _filter_installed = True


__all__ = ["SIDE_EFFECT_FUNCTIONS", "check_query", "dialect_for_url", "refusals"]

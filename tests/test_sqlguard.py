"""The SQL guard refuses everything but one read, in the dialect the query will run in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sentinel.errors import UnsafeQueryError, ValidationError
from sentinel.sqlguard import SIDE_EFFECT_FUNCTIONS, check_query, dialect_for_url

DIALECTS = ["postgres", "mysql", "sqlite", None]

READS = [
    "SELECT 'OK' AS status",
    "select 'ALERT' as status, count(*) as actual_value, 10 as threshold from orders",
    "SELECT CASE WHEN SUM(amount) < 10000 THEN 'ALERT' ELSE 'OK' END AS status FROM orders",
    "WITH recent AS (SELECT * FROM orders WHERE amount > 5) SELECT 'OK' AS status FROM recent",
    "SELECT 'OK' AS status UNION SELECT 'ALERT'",
    "SELECT a FROM t INTERSECT SELECT a FROM u",
    "SELECT a FROM t EXCEPT SELECT a FROM u",
    "(SELECT 'OK' AS status)",
    "SELECT id, row_number() OVER (PARTITION BY kind ORDER BY id) AS rn FROM t",
    "SELECT '$1; DROP TABLE t' AS status",
    "SELECT 'a; DELETE FROM t' AS status -- a comment; DELETE FROM t",
    "SELECT 'OK' AS status;",
    "SELECT 'OK' AS status;;  ",
    "/* leading comment */ SELECT 'OK' AS status",
    "SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE b > 1)",
    "SELECT 'OK' AS status FROM t WHERE EXISTS (SELECT 1 FROM u)",
]

DIALECT_READS = [
    ("postgres", "SELECT amount::numeric AS actual_value FROM orders"),
    ("postgres", "SELECT count(*) FILTER (WHERE x > 1) FROM t WHERE d > now() - interval '1 hour'"),
    ("postgres", "SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC"),
    ("postgres", "SELECT payload->>'kind' AS k FROM events WHERE name ILIKE 'a%'"),
    ("postgres", "SELECT pg_sleep(1)"),
    ("mysql", "SELECT `status`, `value` FROM `checks`"),
    ("mysql", "SELECT IFNULL(a, 0), DATE_SUB(NOW(), INTERVAL 1 DAY) FROM t"),
    ("mysql", "SELECT SLEEP(1)"),
    ("sqlite", "SELECT datetime('now', '-1 day'), ifnull(a, 0) FROM t"),
    ("tsql", "SELECT TOP 1 [status] FROM checks"),
    ("snowflake", 'SELECT 1 AS "STATUS"'),
    ("duckdb", "SELECT * FROM range(10)"),
]

# (sql, a fragment the reason must contain)
REFUSED = [
    ("INSERT INTO t VALUES (1)", "got INSERT"),
    ("UPDATE t SET a = 1", "got UPDATE"),
    ("DELETE FROM t", "got DELETE"),
    ("DROP TABLE t", "got DROP TABLE"),
    ("TRUNCATE TABLE t", "got TRUNCATE"),
    ("CREATE TABLE t (a INT)", "got CREATE TABLE"),
    ("ALTER TABLE t ADD COLUMN b INT", "got ALTER"),
    ("GRANT SELECT ON t TO someone", "got GRANT"),
    ("SELECT 1; DROP TABLE t", "single statement, found 2: SELECT; DROP TABLE"),
    ("SELECT 'OK' AS status /* ; */; DELETE FROM t", "single statement, found 2: SELECT; DELETE"),
    ("SELECT 1 -- \n; DELETE FROM t", "single statement, found 2: SELECT; DELETE"),
    ("DELETE FROM t; COMMIT; SELECT 'OK' AS status", "found 3: DELETE; COMMIT; SELECT"),
    ("SELECT * INTO t2 FROM t", "SELECT ... INTO"),
    ("SELECT * FROM t FOR UPDATE", "locking clauses"),
    ("SELECT * FROM (SELECT a FROM t FOR UPDATE) s", "locking clauses"),
    ("SET x = 1", "got SET"),
    ("BEGIN", "got BEGIN"),
    ("COMMIT", "got COMMIT"),
    ("", "query is empty"),
    ("   \n\t ", "query is empty"),
    (";;", "only comments or semicolons"),
    ("-- nothing here\n", "only comments or semicolons"),
]

DIALECT_REFUSED = [
    ("postgres", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "DELETE statement"),
    ("postgres", "WITH i AS (INSERT INTO t VALUES (1) RETURNING a) SELECT a FROM i", "INSERT"),
    ("postgres", "WITH x AS (SELECT 1) DELETE FROM t", "got DELETE"),
    ("postgres", "SELECT * FROM t FOR NO KEY UPDATE", "locking clauses"),
    ("postgres", "SELECT * FROM t FOR SHARE", "locking clauses"),
    ("postgres", "SELECT * FROM t FOR KEY SHARE SKIP LOCKED", "locking clauses"),
    ("postgres", "COPY t TO STDOUT", "got COPY"),
    ("postgres", "COPY t FROM '/tmp/x.csv'", "got COPY"),
    ("postgres", "CALL refresh_things()", "got CALL"),
    ("postgres", "DO $$ BEGIN DELETE FROM t; END $$", "got DO"),
    ("postgres", "VACUUM t", "got VACUUM"),
    ("postgres", "START TRANSACTION", "got START"),
    ("postgres", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "got MERGE"),
    ("mysql", "SELECT * FROM t LOCK IN SHARE MODE", "locking clauses"),
    ("mysql", "SELECT a INTO @x FROM t", "SELECT ... INTO"),
    ("mysql", "SELECT a FROM t INTO OUTFILE '/tmp/x'", "cannot parse query as mysql SQL"),
    ("mysql", "CALL p()", "got CALL"),
    ("mysql", "START TRANSACTION", "got BEGIN"),
    ("sqlite", "PRAGMA query_only = OFF", "got PRAGMA"),
    ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "got ATTACH"),
    ("tsql", "EXEC sp_who", "got EXECUTE"),
    ("duckdb", "INSTALL httpfs", "got INSTALL"),
]

DENIED_CALLS = [
    ("postgres", "SELECT pg_terminate_backend(123)", "pg_terminate_backend"),
    ("postgres", "SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_stat_activity", "pg_cancel_"),
    ("postgres", "SELECT PG_RELOAD_CONF()", "pg_reload_conf"),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("postgres", "SELECT nextval('orders_id_seq')", "nextval"),
    ("postgres", "SELECT setval('orders_id_seq', 1)", "setval"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "lo_import"),
    ("postgres", "SELECT * FROM dblink('db', 'DELETE FROM t') AS r(a int)", "dblink"),
    ("postgres", "SELECT 'OK' AS status WHERE pg_try_advisory_lock(1)", "pg_try_advisory_lock"),
    ("mysql", "SELECT GET_LOCK('x', 10)", "get_lock"),
    ("sqlite", "SELECT load_extension('/tmp/evil.so')", "load_extension"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", READS)
def test_ordinary_reads_pass_in_every_dialect(sql: str, dialect: str | None) -> None:
    check_query(sql, dialect)


@pytest.mark.parametrize(("dialect", "sql"), DIALECT_READS)
def test_dialect_specific_reads_pass(dialect: str, sql: str) -> None:
    check_query(sql, dialect)


@pytest.mark.parametrize(
    ("dialect", "sql", "reason"),
    [*((d, sql, reason) for d in DIALECTS for sql, reason in REFUSED), *DIALECT_REFUSED],
)
def test_writes_and_tricks_are_refused(dialect: str | None, sql: str, reason: str) -> None:
    """Everything in ``REFUSED`` in every dialect, and each dialect's own writes in it."""
    with pytest.raises(UnsafeQueryError) as caught:
        check_query(sql, dialect)
    assert reason in caught.value.reason
    assert "\n" not in caught.value.reason


@pytest.mark.parametrize(("dialect", "sql", "name"), DENIED_CALLS)
def test_side_effecting_functions_are_refused(dialect: str, sql: str, name: str) -> None:
    with pytest.raises(UnsafeQueryError) as caught:
        check_query(sql, dialect)
    assert caught.value.reason.startswith(f"function {name}")
    assert "has side effects" in caught.value.reason


def test_denylist_names_are_lower_case_function_names() -> None:
    assert all(name == name.lower() and name.isidentifier() for name in SIDE_EFFECT_FUNCTIONS)
    assert "pg_sleep" not in SIDE_EFFECT_FUNCTIONS
    assert "sleep" not in SIDE_EFFECT_FUNCTIONS


def test_parse_errors_are_one_line_with_the_position() -> None:
    with pytest.raises(UnsafeQueryError) as caught:
        check_query("SELEC 'OK' AS status", "postgres")
    reason = caught.value.reason
    assert reason.startswith("cannot parse query as postgres SQL:")
    assert "line 1, column" in reason
    assert "\n" not in reason
    assert "\x1b" not in reason  # sqlglot highlights with ANSI escapes; none may leak out

    with pytest.raises(UnsafeQueryError) as caught:
        check_query("SELECT 'unterminated", None)
    assert caught.value.reason.startswith("cannot parse query as generic SQL:")
    assert "\n" not in caught.value.reason


def test_unparsed_commands_say_which_and_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UnsafeQueryError) as caught:
        check_query("REFRESH MATERIALIZED VIEW v", "postgres")
    assert caught.value.reason.endswith("got REFRESH")
    assert not [r for r in caplog.records if "Falling back" in r.getMessage()]


def test_refusal_is_a_validation_error_on_the_query_field() -> None:
    with pytest.raises(ValidationError) as caught:
        check_query("DROP TABLE t", "postgres")
    assert isinstance(caught.value, UnsafeQueryError)
    assert [issue.field for issue in caught.value.issues] == ["query"]
    assert str(caught.value).endswith("got DROP TABLE")


def test_repeated_checks_are_memoised() -> None:
    from sentinel.sqlguard import _refusal

    sql = "SELECT 'OK' AS status FROM memo_check_table"
    check_query(sql, "postgres")
    hits = _refusal.cache_info().hits
    check_query(sql, "postgres")
    assert _refusal.cache_info().hits == hits + 1
    # A refused query is memoised too (as its reason), and still raises every time.
    for _ in range(2):
        with pytest.raises(UnsafeQueryError):
            check_query("DELETE FROM memo_check_table", "postgres")


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("postgres://u:p@h/db", "postgres"),
        ("postgresql://u@h/db", "postgres"),
        ("postgresql+psycopg://u:p@h:5432/db", "postgres"),
        ("psycopg://h/db", "postgres"),
        ("mysql://u:p@h/db", "mysql"),
        ("mysql+pymysql://u@h/db", "mysql"),
        ("mariadb+pymysql://u@h/db", "mysql"),
        ("sqlite:///data.db", "sqlite"),
        ("sqlite://", "sqlite"),
        ("duckdb:///x.duckdb", "duckdb"),
        ("mssql+pyodbc://u:p@dsn", "tsql"),
        ("snowflake://u:p@acct/db", "snowflake"),
        ("bigquery://project", "bigquery"),
        ("redshift+psycopg2://u@h:5439/db", "redshift"),
        ("oracle+oracledb://u:p@h/db", "oracle"),
        ("trino://u@h:8080/catalog", "trino"),
        ("clickhouse+native://h/db", "clickhouse"),
        ("POSTGRESQL://u@h/db", "postgres"),
        ("somethingelse://h/db", None),
        ("not a url", None),
    ],
)
def test_dialect_for_url(url: str, dialect: str | None) -> None:
    assert dialect_for_url(url) == dialect


def test_sqlglot_is_not_imported_until_a_query_is_checked() -> None:
    code = (
        "import sys, sentinel.sqlguard as g\n"
        "assert 'sqlglot' not in sys.modules, 'imported at start-up'\n"
        "g.dialect_for_url('postgres://h/db')\n"
        "assert 'sqlglot' not in sys.modules\n"
        "g.check_query('SELECT 1', None)\n"
        "assert 'sqlglot' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Which sqlglot dialect reads the queries of a database, from its SQLAlchemy URL alone."""

from __future__ import annotations

# SQLAlchemy backend name (the part of the URL scheme before any "+driver") -> sqlglot dialect.
_DIALECTS: dict[str, str] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "psycopg": "postgres",
    "psycopg2": "postgres",
    "pgsql": "postgres",
    "cockroachdb": "postgres",
    "redshift": "redshift",
    "mysql": "mysql",
    "mariadb": "mysql",
    "singlestoredb": "singlestore",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mssql": "tsql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "oracle": "oracle",
    "trino": "trino",
    "presto": "presto",
    "clickhouse": "clickhouse",
    "databricks": "databricks",
    "hive": "hive",
    "awsathena": "athena",
    "teradatasql": "teradata",
    "teradata": "teradata",
    "exasol": "exasol",
    "doris": "doris",
    "starrocks": "starrocks",
    "dremio": "dremio",
    "drill": "drill",
    "druid": "druid",
    "risingwave": "risingwave",
    "materialize": "materialize",
}


def dialect_for_url(url: str) -> str | None:
    """The sqlglot dialect for a SQLAlchemy URL, or None (sqlglot's generic dialect) if unknown.

    Only the scheme is read, so any URL SQLAlchemy accepts works, including ones whose password
    contains characters that would make a full parse fail.
    """
    scheme = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
    backend = scheme.split("+", 1)[0].strip().lower()
    return _DIALECTS.get(backend)

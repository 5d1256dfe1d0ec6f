-- A small shop's data for the SQL Sentinel demo. Times are relative to "now", so the alerts in
-- alerts.yaml give the same answers whenever the database is built.
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS api_logs;
DROP TABLE IF EXISTS pipeline_runs;

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_logs (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE pipeline_runs (
    pipeline TEXT NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    rows_loaded INTEGER NOT NULL
);

-- Today's orders add up to 8,450: below the 10,000 revenue target, so that alert fires.
INSERT INTO orders (customer, amount, created_at) VALUES
    ('acme', 1200.00, datetime('now', 'start of day', '+1 minutes')),
    ('globex', 3100.00, datetime('now', 'start of day', '+2 minutes')),
    ('initech', 2650.00, datetime('now', 'start of day', '+3 minutes')),
    ('umbrella', 1500.00, datetime('now', 'start of day', '+4 minutes')),
    ('acme', 9800.00, datetime('now', 'start of day', '-1 day')),
    ('globex', 7300.00, datetime('now', 'start of day', '-2 days'));

-- 200 requests in the last hour, 4 of them 5xx: a 2% error rate, under the 5% threshold.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO api_logs (endpoint, status_code, latency_ms, created_at)
SELECT CASE i % 3 WHEN 0 THEN '/checkout' WHEN 1 THEN '/cart' ELSE '/search' END,
       CASE WHEN i % 50 = 0 THEN 503 ELSE 200 END,
       40 + (i * 7) % 300,
       datetime('now', printf('-%d seconds', i * 15))
FROM n;

-- The orders pipeline last finished five hours ago; it should run hourly.
INSERT INTO pipeline_runs (pipeline, finished_at, rows_loaded) VALUES
    ('orders_etl', datetime('now', '-5 hours'), 1830),
    ('orders_etl', datetime('now', '-6 hours'), 1795),
    ('customers_etl', datetime('now', '-20 minutes'), 412);

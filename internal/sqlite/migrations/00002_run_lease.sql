-- +goose Up
-- A run renews heartbeat_at while it works; a running row whose heartbeat
-- is older than the lease belongs to a dead process (SIGKILL, crash) and is
-- marked 'abandoned' by the next run or verify. unwritten counts the codes a
-- run left for a rerun (not fetched, or fetched but never stored). owner is
-- the process that started the run ("host/pid@start"): a running row whose
-- owner is a process of the looking host that no longer exists is marked
-- abandoned at once, without waiting for the lease. SQLite
-- cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE ingestion_runs_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    window_from  TEXT    NOT NULL,
    window_to    TEXT    NOT NULL,
    path         TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'abandoned')),
    universe     INTEGER NOT NULL DEFAULT 0,
    fetched      INTEGER NOT NULL DEFAULT 0,
    written      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    requests     INTEGER NOT NULL DEFAULT 0,
    elapsed_ms   INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    unwritten    INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds, so the lease compares as a number whatever the
    -- offset the instant was written with.
    heartbeat_ms INTEGER NOT NULL,
    owner        TEXT    NOT NULL DEFAULT ''
);
INSERT INTO ingestion_runs_new (id, started_at, finished_at, window_from, window_to, path, status, universe, fetched,
    written, unchanged, rejected, failed, requests, elapsed_ms, error, heartbeat_ms)
SELECT id, started_at, finished_at, window_from, window_to, path, status, universe, fetched,
    written, unchanged, rejected, failed, requests, elapsed_ms, error,
    CAST(round((julianday(coalesce(finished_at, started_at)) - 2440587.5) * 86400000) AS INTEGER)
FROM ingestion_runs;
DROP TABLE ingestion_runs;
ALTER TABLE ingestion_runs_new RENAME TO ingestion_runs;
CREATE INDEX ingestion_runs_running ON ingestion_runs (heartbeat_ms) WHERE status = 'running';

-- +goose Down
DROP INDEX ingestion_runs_running;
UPDATE ingestion_runs SET status = 'failed' WHERE status = 'abandoned';
CREATE TABLE ingestion_runs_old (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    window_from TEXT    NOT NULL,
    window_to   TEXT    NOT NULL,
    path        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    universe    INTEGER NOT NULL DEFAULT 0,
    fetched     INTEGER NOT NULL DEFAULT 0,
    written     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    elapsed_ms  INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);
INSERT INTO ingestion_runs_old SELECT id, started_at, finished_at, window_from, window_to, path, status, universe,
    fetched, written, unchanged, rejected, failed, requests, elapsed_ms, error FROM ingestion_runs;
DROP TABLE ingestion_runs;
ALTER TABLE ingestion_runs_old RENAME TO ingestion_runs;

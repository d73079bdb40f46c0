-- +goose Up
-- A run renews heartbeat_at while it works; a running row whose heartbeat
-- is older than the lease belongs to a dead process (SIGKILL, crash) and is
-- marked 'abandoned' by the next run or verify. unwritten counts the codes a
-- run left for a rerun (not fetched, or fetched but never stored). owner is
-- the process that started the run ("host/pid@start"): a running row whose
-- owner is a process of the looking host that no longer exists is marked
-- abandoned at once, without waiting for the lease.
ALTER TABLE ingestion_runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
UPDATE ingestion_runs SET heartbeat_at = coalesce(finished_at, started_at);
ALTER TABLE ingestion_runs ALTER COLUMN heartbeat_at SET NOT NULL;
ALTER TABLE ingestion_runs ADD COLUMN unwritten INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ingestion_runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE ingestion_runs DROP CONSTRAINT ingestion_runs_status_check;
ALTER TABLE ingestion_runs ADD CONSTRAINT ingestion_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'abandoned'));
CREATE INDEX ingestion_runs_running ON ingestion_runs (heartbeat_at) WHERE status = 'running';

-- +goose Down
DROP INDEX ingestion_runs_running;
UPDATE ingestion_runs SET status = 'failed' WHERE status = 'abandoned';
ALTER TABLE ingestion_runs DROP CONSTRAINT ingestion_runs_status_check;
ALTER TABLE ingestion_runs ADD CONSTRAINT ingestion_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted'));
ALTER TABLE ingestion_runs DROP COLUMN owner;
ALTER TABLE ingestion_runs DROP COLUMN unwritten;
ALTER TABLE ingestion_runs DROP COLUMN heartbeat_at;

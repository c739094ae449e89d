-- When the pull whose vehicles a run is about to ingest began (its latest try), so an ingest can tell that
-- a LATER run already ingested the dealer: clearing an old run's failed ingest must not re-send stale
-- content or move the HomeNet change window backwards. `start_time` cannot say it: a re-run of the same DAG
-- run keeps its row, and its first start. NULL on rows written before this column existed.
ALTER TABLE job_executions ADD COLUMN IF NOT EXISTS pull_started_at TIMESTAMPTZ;

-- The stale check looks up a dealer x platform's successes by when they ended.
CREATE INDEX IF NOT EXISTS job_executions_success_end_idx
    ON job_executions (dealer_id, platform, end_time) WHERE status = 'success';

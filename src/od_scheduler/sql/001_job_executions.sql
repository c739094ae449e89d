-- Job history: one row per (DAG run, dealer, platform). Applied idempotently by `make setup`.
-- Seed columns of the previous system, plus dag_id, run_id, try_number, vehicles_rejected, vehicles_delisted.
CREATE TABLE IF NOT EXISTS job_executions (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id              TEXT        NOT NULL,              -- <dealer_id>_<platform>
    dealer_id           TEXT        NOT NULL,
    platform            TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    start_time          TIMESTAMPTZ NOT NULL DEFAULT now(),
    end_time            TIMESTAMPTZ,
    vehicles_found      INTEGER     NOT NULL DEFAULT 0,
    vehicles_processed  INTEGER     NOT NULL DEFAULT 0,
    errors              TEXT[]      NOT NULL DEFAULT '{}',
    performance_metrics JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    dag_id              TEXT        NOT NULL,
    run_id              TEXT        NOT NULL,
    try_number          INTEGER     NOT NULL DEFAULT 1,
    vehicles_rejected   INTEGER     NOT NULL DEFAULT 0,
    vehicles_delisted   INTEGER     NOT NULL DEFAULT 0,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT job_executions_status_check
        CHECK (status IN ('running', 'success', 'failed', 'skipped')),
    CONSTRAINT job_executions_counts_check
        CHECK (vehicles_found >= 0 AND vehicles_processed >= 0
               AND vehicles_rejected >= 0 AND vehicles_delisted >= 0)
);

-- The upsert key: a retry or a re-run of the same DAG run updates its row, never adds one.
CREATE UNIQUE INDEX IF NOT EXISTS job_executions_run_dealer_platform_uq
    ON job_executions (dag_id, run_id, dealer_id, platform);

-- Status queries, due-ness and cleanup read "latest executions of a dealer x platform".
CREATE INDEX IF NOT EXISTS job_executions_dealer_platform_start_idx
    ON job_executions (dealer_id, platform, start_time DESC);
CREATE INDEX IF NOT EXISTS job_executions_start_time_idx
    ON job_executions (start_time);
CREATE INDEX IF NOT EXISTS job_executions_status_idx
    ON job_executions (status);

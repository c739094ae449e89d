-- Alert deduplication: one row per alerting condition, keyed like `failure_rate:<dag_id>`,
-- `held:<platform>:<dealer_id>`, `missing:<platform>:<dealer_id>`, `anomaly:<platform>:<dealer_id>`,
-- `long_run:<dag_id>` or `system:<dag_id>`. A condition alerts once while it is open (cleared_at IS NULL and
-- last_sent set); a check that finds it absent sets cleared_at, so a later recurrence alerts again.
-- last_sent is NULL while an alert for the open condition is still owed (its delivery failed).
CREATE TABLE IF NOT EXISTS alert_state (
    key         TEXT        PRIMARY KEY,
    kind        TEXT        NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sent   TIMESTAMPTZ,
    cleared_at  TIMESTAMPTZ,
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb
);

-- Checks clear the open conditions of one kind/prefix that they no longer see.
CREATE INDEX IF NOT EXISTS alert_state_open_idx ON alert_state (kind) WHERE cleared_at IS NULL;

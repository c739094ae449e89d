-- Per-source state that must survive between runs, e.g. Cobalt's last successful ETag.
-- Written only after the dealer's ingest succeeded, so a failed run never advances it.
CREATE TABLE IF NOT EXISTS source_state (
    dealer_id   TEXT        NOT NULL,
    platform    TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (dealer_id, platform, key)
);

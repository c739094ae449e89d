-- One pull at a time per dealer x platform. A run leases the dealer from its pull until its ingest ends;
-- another run (a backfill beside the schedule, a manual trigger) finds the lease and skips the dealer.
-- Leases expire, so a killed task cannot block a dealer for longer than the lease time.
CREATE TABLE IF NOT EXISTS dealer_leases (
    dealer_id   TEXT        NOT NULL,
    platform    TEXT        NOT NULL,
    dag_id      TEXT        NOT NULL,
    run_id      TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dealer_id, platform)
);

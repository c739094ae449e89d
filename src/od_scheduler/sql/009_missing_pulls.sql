-- Delisting waits for consecutive misses. A live vehicle missing from a complete pull is not delisted at
-- once: its miss is counted, and it is delisted only once missing_pulls reaches the
-- delist_after_missing_pulls setting (default 2). Any pull that sees the VIN (staged, or rejected with a
-- readable VIN) resets the count. missing_runs holds the runs ("<dag_id>/<run_id>") counted since the last
-- reset, so a retry or re-run of a run never counts its miss twice (kept to the most recent few).
--
-- delist_unconfirmed: a delist request for the VIN was answered with a short `delisted` count, so the
-- Data API may or may not still advertise it. It stays live here (the delist is sent again by the next
-- complete pull that misses it), but its content is no longer taken as held: if it comes back it is sent.
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS missing_pulls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS missing_runs TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS delist_unconfirmed BOOLEAN NOT NULL DEFAULT false;

-- Rejections are state, not failures. A vehicle the Data API rejected is remembered on its
-- vehicle_fingerprints row with the content hash it was rejected for and the API's reason, and is not
-- sent again until its content changes (or a full_refresh); it is counted as rejected in every run while
-- that content stands. A row may now exist for a VIN the Data API never accepted (content_hash NULL):
-- such a row is not live and is never delisted.
--
-- revision grows with every change of what the Data API holds for the VIN (accepted, re-listed,
-- delisted). It is part of each batch's Idempotency-Key, so a batch computed against other stored state
-- (an old run cleared after later runs changed the vehicle back and forth) never replays a stale answer.
ALTER TABLE vehicle_fingerprints ALTER COLUMN content_hash DROP NOT NULL;
ALTER TABLE vehicle_fingerprints ALTER COLUMN hash_version DROP NOT NULL;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS rejected_hash TEXT;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS rejected_hash_version INTEGER;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS rejected_reason TEXT;
ALTER TABLE vehicle_fingerprints ADD COLUMN IF NOT EXISTS rejected_at TIMESTAMPTZ;

-- A row holds an accepted version, a standing rejection, or both; never half of either.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
         WHERE conname = 'vehicle_fingerprints_state_check'
           AND conrelid = 'vehicle_fingerprints'::regclass
    ) THEN
        ALTER TABLE vehicle_fingerprints ADD CONSTRAINT vehicle_fingerprints_state_check CHECK (
            (content_hash IS NULL) = (hash_version IS NULL)
            AND (rejected_hash IS NULL) = (rejected_reason IS NULL)
            AND (rejected_hash IS NULL) = (rejected_hash_version IS NULL)
            AND (content_hash IS NOT NULL OR rejected_hash IS NOT NULL)
        );
    END IF;
END $$;

CREATE INDEX IF NOT EXISTS vehicle_fingerprints_rejected_idx
    ON vehicle_fingerprints (dealer_id, platform) WHERE rejected_hash IS NOT NULL;

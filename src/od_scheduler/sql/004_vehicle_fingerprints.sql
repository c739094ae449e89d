-- What the Data API holds for each dealer x platform x VIN, as far as this project knows: the content
-- hash of the last accepted version (hash_version says which field list made it), when it was first and
-- last seen, and when it was delisted (NULL = live). Updated only for vehicles the Data API accepted.
CREATE TABLE IF NOT EXISTS vehicle_fingerprints (
    dealer_id     TEXT        NOT NULL,
    platform      TEXT        NOT NULL,
    vin           TEXT        NOT NULL,
    content_hash  TEXT        NOT NULL,
    hash_version  INTEGER     NOT NULL,
    first_seen    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delisted_at   TIMESTAMPTZ,
    PRIMARY KEY (dealer_id, platform, vin)
);
CREATE INDEX IF NOT EXISTS vehicle_fingerprints_live_idx
    ON vehicle_fingerprints (dealer_id, platform) WHERE delisted_at IS NULL;

-- Who a dealer id is: name, slug and platforms as PayloadCMS last listed them, so the status page, the status
-- API and alerts can name dealers the job history only knows by id. Upserted in one statement by every
-- `list_dealers` run (the dealers the CMS returned for that platform) and by `inventory_freshness` (every
-- active dealer). `platforms` is the CMS document's list; `listed_at` says how current the row is (a dealer
-- the CMS stopped listing keeps its last row). name and slug are NULL only for a CMS document that failed
-- validation without them (a name is never made up); cms_error is that validation error (NULL: valid).
CREATE TABLE IF NOT EXISTS dealer_directory (
    dealer_id   TEXT        PRIMARY KEY,
    name        TEXT,
    slug        TEXT,
    platforms   TEXT[]      NOT NULL DEFAULT '{}',
    cms_error   TEXT,
    listed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The dealers section and GET /api/dealers list by name.
CREATE INDEX IF NOT EXISTS dealer_directory_name_idx ON dealer_directory (lower(name), dealer_id);

-- How many dealers the CMS listed for each platform the last time a run listed them all. A listing of zero
-- dealers for a platform that had dealers is far more likely a CMS fault (a broken filter, an emptied
-- collection, a wrong API key's view) than every dealer leaving at once: that run fails and alerts instead
-- of going green with nothing pulled, and this count is kept until a listing has dealers again or a run with
-- force=true accepts the empty answer.
CREATE TABLE IF NOT EXISTS platform_listings (
    platform   TEXT        PRIMARY KEY,
    dealers    INTEGER     NOT NULL,
    listed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

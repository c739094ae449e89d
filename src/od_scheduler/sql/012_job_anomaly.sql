-- An inventory anomaly is recorded as data: the ingest that fails a dealer because its complete pull came
-- back empty, or shrank past max_drop_fraction of the live vehicles, writes why in `anomaly` when it ends
-- the job (every other ending of the job writes NULL, and a new pull try clears it). The anomaly alerts of
-- summarize_run and inventory_freshness read this column, not the error text.
ALTER TABLE job_executions ADD COLUMN IF NOT EXISTS anomaly TEXT;
-- Rows that failed for an anomaly before the column existed: their last error is the ingest's guard.
UPDATE job_executions
   SET anomaly = regexp_replace(errors[cardinality(errors)], '^try [0-9]+: ', '')
 WHERE anomaly IS NULL
   AND status = 'failed'
   AND errors[cardinality(errors)] ~ '^(try [0-9]+: )?inventory anomaly\M';

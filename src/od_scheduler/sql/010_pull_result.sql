-- Shards: a task works on many dealers, and its retry (or a clear in the UI) re-does only the dealers that
-- did not succeed in the run. What a dealer's pull staged is therefore kept on its own row, not only in the
-- shard task's XCom (which a failed task never pushes): the ingest of the same shard reads it from here, and
-- a retried pull knows which of its dealers were already pulled in this run. NULL: not pulled (yet) in
-- this run; a new pull try of the dealer clears it first.
ALTER TABLE job_executions ADD COLUMN IF NOT EXISTS pull_result JSONB;

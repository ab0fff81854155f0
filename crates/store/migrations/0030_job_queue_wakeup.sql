-- The job queue's wake-up call and what a replay needs.
--
-- Every insert into `jobs` notifies channel `tally_jobs` once per statement (PostgreSQL delivers it
-- at commit and folds identical notifications of one transaction), so an idle worker starts a new
-- job within milliseconds instead of at its next poll. Enqueuers need to do nothing for it.
CREATE FUNCTION tally_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tally_jobs', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION tally_jobs_notify();

-- A replayed job coalesces with a pending job of the same identity, as the original did.
ALTER TABLE worker_failed_jobs ADD COLUMN dedupe_key text;

-- Recompute loads the earlier touches of the identities that converted in its window; without
-- this index that is a scan of the whole lookback (30 days of events) for every day recomputed.
CREATE INDEX attribution_events_touches_by_identity ON attribution_events
    (tenant_id, (COALESCE(user_id, anonymous_id, session_id)), occurred_at)
    WHERE kind = 'touch';

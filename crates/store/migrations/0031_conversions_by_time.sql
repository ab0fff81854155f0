-- Recompute reads a window's conversions (about a tenth of the events); this keeps that read off
-- the window's touches, and makes it cheap even before the table has fresh statistics (a job
-- often runs right after a bulk load, before autovacuum has analysed it).
CREATE INDEX attribution_events_conversions_by_time ON attribution_events (tenant_id, occurred_at)
    WHERE kind = 'conversion';

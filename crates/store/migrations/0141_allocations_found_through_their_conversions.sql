-- A recompute's first run of the 1 M-event day spent 4.8 of its 8.7 s inserting 438 k allocation
-- rows (`tally bench attribution`, release, 2 cores). Of an insert's per-row cost the time index
-- was a third: 349 k rows took 3.26 s with it and 2.45 s without (as tally_app, under RLS, same
-- run). Its one reader, the window's allocations (`reconciliation::allocation_shares`: the
-- recompute's diff and the verified shares), now finds them through the window's conversions
-- (the partial conversions-by-time index of 0031) and the allocations' primary key, whose prefix
-- is (tenant_id, conversion_id): an allocation's occurred_at is its conversion's, which
-- `tally_check_new_allocations` (0130) enforces.
DROP INDEX attribution_allocations_by_time;

-- The recompute's fast pass adds new conversions' journey-local splits to the rollups of their
-- hour and day (an upsert that increments), ahead of the window's full run, which rebuilds the
-- rows from scratch (crates/worker/src/recompute.rs). 0041 had left tally_app without UPDATE.
GRANT UPDATE ON revenue_rollups TO tally_app;

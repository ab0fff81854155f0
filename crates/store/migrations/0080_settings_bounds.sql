-- The database's half of the bounds the settings API enforces (crates/store/src/settings.rs),
-- for the columns whose CHECK was looser than what the attribution code can use: a default
-- model must be one of the eight, and the time-decay half-life lies within [1 h, 1 year] (the
-- models degenerate outside it). The time zone is not checked here: a CHECK must be immutable,
-- and whether PostgreSQL knows a zone name depends on its tz database.
ALTER TABLE tenant_settings
    ADD CONSTRAINT tenant_settings_default_model_known CHECK (default_model IN (
        'first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay',
        'markov', 'shapley')),
    ADD CONSTRAINT tenant_settings_half_life_bounded
        CHECK (time_decay_half_life_hours BETWEEN 1 AND 8760);

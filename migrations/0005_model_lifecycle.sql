-- A model can be deprecated through the API: the planner never chooses it again and it is not "the newest model";
-- its package stays downloadable for devices that still run it. A model nothing refers to can be deleted outright.
ALTER TABLE models ADD COLUMN deprecated_at timestamptz;
-- The newest model the planner may use: read on every maintenance tick.
CREATE INDEX models_plannable_idx ON models (created_at DESC, id DESC) WHERE planning_space IS NOT NULL AND deprecated_at IS NULL;

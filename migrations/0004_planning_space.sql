-- The planner's view of an elastic package (block positions, variant profiles, additive accuracy drops),
-- derived from the package manifest when the model is published, so re-planning never re-reads the package.
-- NULL for models published before elastic packages existed: they have one fixed combination.
ALTER TABLE models ADD COLUMN planning_space jsonb;

// Planner module; see DESIGN.md's module map.

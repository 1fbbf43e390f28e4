"""The planners' boundary editor (/planner)."""

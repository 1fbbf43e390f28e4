"""Grids: versioned storage, boundary rules, point → block assignment (single and set-wise)."""

"""Map reads for the dashboard: grid layers, metrics, markers, heat data, search, the live stamp."""

"""Assessment (考核): the indicator registry, indicators computed from the records, scores, rankings and their snapshots."""

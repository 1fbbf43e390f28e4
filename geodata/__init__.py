"""Gridwatch domain and data layer. Never imports dash."""

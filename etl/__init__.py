"""Imports, exports and generators. Calls geodata, never dashboard."""

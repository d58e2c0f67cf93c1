"""Leaf utilities: device resolution, seeding, atomic file writes, logging."""

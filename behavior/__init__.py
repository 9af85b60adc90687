"""aiswatch behavior."""

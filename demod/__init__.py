"""aiswatch demod."""

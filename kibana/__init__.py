"""aiswatch kibana."""

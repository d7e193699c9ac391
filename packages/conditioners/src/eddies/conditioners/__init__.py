"""eddies.conditioners."""

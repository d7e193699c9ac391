"""eddies.flows."""

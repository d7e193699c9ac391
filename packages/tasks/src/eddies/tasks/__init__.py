"""eddies.tasks."""

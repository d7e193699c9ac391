"""eddies.priors."""

"""Generic model kinds: conditional_flow, sequence_flow, latent_dynamics_vae, predictor."""

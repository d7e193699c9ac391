"""Generic model kinds: conditional_flow, sequence_flow, latent_dynamics_vae, predictor."""

from eddies.core.models.conditional_flow import ConditionalFlow  # noqa: F401 (registers conditional_flow)
from eddies.core.models.sequence_flow import SequenceFlow

__all__ = ["SequenceFlow"]

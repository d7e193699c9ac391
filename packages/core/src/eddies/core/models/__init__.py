"""Generic model kinds: ``conditional_flow`` (c-Glow) and ``sequence_flow`` (FRMDN, RMDN).

DESIGN.md also plans ``latent_dynamics_vae`` (SRVP) and ``predictor`` (MotionRNN); their parts
(``residual_dynamics`` in eddies-priors; ``motiongru``/``predrnn`` in eddies-conditioners)
exist, the assemblies do not yet.
"""

from eddies.core.models.conditional_flow import ConditionalFlow
from eddies.core.models.sequence_flow import SequenceFlow

__all__ = ["ConditionalFlow", "SequenceFlow"]

"""eddies.priors: densities over latents, registered in the ``priors`` registry.

``standard_normal`` (Glow / c-Glow), ``diag_gaussian`` (free or from a context),
``gmm_lowrank`` (FRMDN's mixture with low-rank precision), and two causal temporal priors:
``residual_latent`` (MotionFlow's residual latent mean) and ``euler_state`` (SRVP's Euler state
dynamics). Importing this package registers them (the ``eddies.priors`` entry point does so).
"""

from eddies.priors.diag_gaussian import DiagGaussian
from eddies.priors.euler_state import EulerState
from eddies.priors.gaussian_steps import GaussianStepPrior, Rollout
from eddies.priors.gmm_lowrank import GMMLowRankPrecision, LowRankPrecisionMixture
from eddies.priors.head import ContextHead
from eddies.priors.residual_latent import ResidualLatent
from eddies.priors.standard_normal import StandardNormal

__version__ = "0.1.0"

__all__ = ["__version__",
    "ContextHead", "DiagGaussian", "EulerState", "GMMLowRankPrecision", "GaussianStepPrior",
    "LowRankPrecisionMixture", "ResidualLatent", "Rollout", "StandardNormal",
]

"""eddies.priors: densities over latents, registered in the ``priors`` registry.

``standard_normal``, ``diag_gaussian``, ``gmm_lowrank`` (FRMDN's mixture with low-rank
precision), ``residual_dynamics`` (MotionFlow / SRVP causal temporal prior).
Importing this package registers them (the ``eddies.priors`` entry point does so).
"""

from eddies.priors.diag_gaussian import DiagGaussian
from eddies.priors.gmm_lowrank import GMMLowRankPrecision, LowRankPrecisionMixture
from eddies.priors.head import ContextHead
from eddies.priors.residual_dynamics import ResidualDynamics
from eddies.priors.standard_normal import StandardNormal

__all__ = [
    "ContextHead", "DiagGaussian", "GMMLowRankPrecision", "LowRankPrecisionMixture", "ResidualDynamics",
    "StandardNormal",
]

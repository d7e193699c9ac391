"""eddies.flows: invertible layers of Glow, RealNVP, NICE, MAF, c-Glow and MotionFlow.

Importing the package registers every layer in the ``flows`` registry (see docs/flows.md)::

    >>> from eddies.core import FLOWS
    >>> "affine_coupling" in FLOWS
    True
"""

from eddies.flows import (  # noqa: F401 (registration)
    actnorm,
    chain,
    coupling,
    elementwise,
    glow,
    invconv,
    maf,
    permutation,
    split,
    squeeze,
)
from eddies.flows.actnorm import ActNorm, CondActNorm
from eddies.flows.chain import Chain
from eddies.flows.coupling import Coupling
from eddies.flows.elementwise import ElementwiseAffine, Logit
from eddies.flows.glow import GlowStep, MultiScale
from eddies.flows.invconv import CondInvConv1x1, InvConv1x1
from eddies.flows.maf import MAF
from eddies.flows.permutation import Permute, Reverse
from eddies.flows.split import Split
from eddies.flows.squeeze import Squeeze

__version__ = "0.1.0"

__all__ = ["__version__",
    "MAF", "ActNorm", "Chain", "CondActNorm", "CondInvConv1x1", "Coupling", "ElementwiseAffine",
    "GlowStep", "InvConv1x1", "Logit", "MultiScale", "Permute", "Reverse", "Split", "Squeeze",
]

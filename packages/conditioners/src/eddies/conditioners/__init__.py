"""eddies.conditioners: networks that turn inputs and history into parameters of flows and priors.

Importing this package registers every conditioner in the ``conditioners`` registry (the
entry point ``eddies.conditioners`` does it on the first lookup)::

    from eddies.core import build
    net = build({"type": "mlp", "hidden": [32]}, "conditioners", in_shape=(4,), out_shape=(8,))
"""

from eddies.conditioners.cglow import CGlowFeatureNet, CGlowVectorNet, resize_conv
from eddies.conditioners.cnn import ConvStack
from eddies.conditioners.lmconv import LMConv
from eddies.conditioners.mlp import MLP
from eddies.conditioners.motionflow import MotionFlowConditioner
from eddies.conditioners.motiongru import MotionGRU, neighbourhood_warp
from eddies.conditioners.orderings import Ordering, ordering_ranks
from eddies.conditioners.pono import PONO, pono
from eddies.conditioners.predrnn import PredRNN, SpatioTemporalLSTMCell
from eddies.conditioners.recurrent import GRUConditioner, LSTMConditioner

__all__ = [
    "MLP", "PONO", "CGlowFeatureNet", "CGlowVectorNet", "ConvStack", "GRUConditioner", "LMConv",
    "LSTMConditioner", "MotionFlowConditioner", "MotionGRU", "Ordering", "PredRNN",
    "SpatioTemporalLSTMCell", "neighbourhood_warp", "ordering_ranks", "pono", "resize_conv",
]

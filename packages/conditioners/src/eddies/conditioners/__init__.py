"""eddies.conditioners: networks that turn inputs and history into parameters of flows and priors.

Importing this package registers every conditioner in the ``conditioners`` registry (the
entry point ``eddies.conditioners`` does it on the first lookup)::

    from eddies.core import build
    net = build({"type": "mlp", "hidden": [32]}, "conditioners", in_shape=(4,), out_shape=(8,))

``lstm``, ``gru``, ``motiongru`` and ``predrnn`` are sequence conditioners (:class:`eddies.core.SequenceConditioner`);
every conditioner passes the conformance kit (:mod:`eddies.core.testing.conditioners`).

The papers (local copies, where we have them, in the shared papers directory):

- FRMDN: Razavi, Hosseini & Behzad 2020, arXiv:2008.02144 (frmdn.txt): ``mlp``, ``lstm``;
- Glow: Kingma & Dhariwal, NeurIPS 2018, arXiv:1807.03039: ``cnn``, ``actnorm`` normaliser;
- c-Glow: Lu & Huang, AAAI 2020, arXiv:1905.13288 (cglow.txt): ``cglow_vector``, ``cglow_features``;
- LMConv: Jain, Abbeel & Pathak, "Locally Masked Convolution for Autoregressive Models",
  UAI 2020, arXiv:2006.12486: ``lmconv`` and its orderings;
- PONO: Li, Wu, Lim, Belongie & Weinberger, "Positional Normalization", NeurIPS 2019,
  arXiv:1907.04312: ``pono``;
- MotionFlow: Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt):
  ``motionflow_conditioner``;
- SRVP: Franceschi, Delasalles, Chen, Lamprier & Gallinari, ICML 2020, arXiv:2002.09219 (srvp.txt):
  ``dcgan_encoder``, ``dcgan_decoder`` (the DCGAN frame encoder and decoder of SVG and SRVP);
- PredRNN: Wang, Long, Wang, Gao & Yu, NeurIPS 2017 (journal version arXiv:2103.09504): ``predrnn``;
- MotionRNN: Wu, Yao, Wang & Long, CVPR 2021, arXiv:2103.02243 (motionrnn_supplement.txt):
  ``motiongru``, ``predrnn`` with ``motion: true``.
"""

from eddies.conditioners.cglow import CGlowFeatureNet, CGlowVectorNet, resize_conv
from eddies.conditioners.cnn import ConvStack
from eddies.conditioners.dcgan import DCGANDecoder, DCGANEncoder
from eddies.conditioners.lmconv import LMConv
from eddies.conditioners.mlp import MLP
from eddies.conditioners.motionflow import MotionFlowConditioner
from eddies.conditioners.motiongru import MotionGRU, neighbourhood_warp
from eddies.conditioners.orderings import Ordering, ordering_ranks
from eddies.conditioners.pono import PONO, pono
from eddies.conditioners.predrnn import PredRNN, SpatioTemporalLSTMCell
from eddies.conditioners.recurrent import GRUConditioner, LSTMConditioner

__version__ = "0.1.0"

__all__ = ["__version__",
    "MLP", "PONO", "CGlowFeatureNet", "CGlowVectorNet", "ConvStack", "DCGANDecoder", "DCGANEncoder", "GRUConditioner", "LMConv",
    "LSTMConditioner", "MotionFlowConditioner", "MotionGRU", "Ordering", "PredRNN",
    "SpatioTemporalLSTMCell", "neighbourhood_warp", "ordering_ranks", "pono", "resize_conv",
]

"""eddies.models: the model kinds, registered in the ``models`` registry.

- ``conditional_flow`` (c-Glow; Lu & Huang 2020, arXiv:1905.13288): a flow over ``y`` whose
  conditional layers read ``x`` or one shared ``encoder(x)``;
- ``sequence_flow`` (FRMDN and RMDN; Razavi, Hosseini & Behzad 2020, arXiv:2008.02144): a
  per-step flow under an autoregressive mixture prior driven by a sequence conditioner;
- ``gaussian_regression``: the exact linear-Gaussian baseline of the smoke tests;
- ``temporal_flow`` (MotionFlow; Zand, Etemad & Greenspan 2023, arXiv:2104.04391): per frame a
  conditional flow over the frame's change given one encoding of the sliding input window, the
  frames' latents under a temporal prior, rolled out autoregressively;
- ``fcn_segmenter``: the deterministic FCN baseline of binary segmentation (sigmoid, binary
  cross-entropy; c-Glow's table 1);
- ``video_predictor`` (PredRNN, MotionRNN, ConvLSTM; Wu, Yao, Wang & Long 2021, arXiv:2103.02243): a
  deterministic next-frame predictor on patched frames, trained by MSE with scheduled sampling;
- ``latent_dynamics_vae`` (SRVP; Franceschi, Delasalles, Chen, Lamprier & Gallinari 2020,
  arXiv:2002.09219): a latent state moved by residual Euler steps, a content variable, the ELBO;
- ``zero_velocity`` and ``constant_velocity``: the deterministic baselines of motion prediction
  (repeat the last input frame; continue its last change), without parameters or density;
- ``gaussian_random_walk``: the probabilistic forecasting baseline (Gaussian increments with a
  drift and scale per element, fitted by likelihood).

Every kind implements :class:`eddies.core.Model` (``sample`` / ``predict`` with ``samples``,
``temperature``, ``prefix``, ``horizon``). Importing this package registers them (the
``eddies.models`` entry point does so). DESIGN.md plans ``latent_dynamics_vae`` (SRVP) and ``video_predictor`` (MotionRNN) here too.
"""

from eddies.models.conditional_flow import ConditionalFlow
from eddies.models.fcn import FCNSegmenter
from eddies.models.gaussian_regression import GaussianRegression
from eddies.models.latent_dynamics_vae import LatentDynamicsVAE
from eddies.models.motion_baselines import ConstantVelocity, ZeroVelocity
from eddies.models.random_walk import GaussianRandomWalk
from eddies.models.sequence_flow import SequenceFlow
from eddies.models.temporal_flow import TemporalFlow
from eddies.models.video_predictor import VideoPredictor

__version__ = "0.1.0"

__all__ = ["__version__",
    "ConditionalFlow", "ConstantVelocity", "FCNSegmenter", "GaussianRandomWalk", "GaussianRegression", "LatentDynamicsVAE", "SequenceFlow", "TemporalFlow",
    "VideoPredictor", "ZeroVelocity",
]

"""eddies.tasks: task plug-ins (data preparation, batch layout, metrics, pictures).

Importing the package registers every task: ``mnist_rows``, ``weizmann_horse``, ``cmu_mocap``,
``particles`` and ``exchange_rate`` (MotionFlow's other sequence experiments),
``moving_mnist`` (video prediction on stochastic or deterministic moving MNIST)
and ``synthetic_regression`` (seeded linear-Gaussian data for smoke tests).
One's own data needs no Task class: ``tensors`` and ``hf_dataset`` (:mod:`eddies.tasks.user_data`).
"""

from eddies.tasks.cmu_mocap import CMUMocap as CMUMocap  # registers cmu_mocap
from eddies.tasks.exchange_rate import ExchangeRate as ExchangeRate  # registers exchange_rate
from eddies.tasks.mnist_rows import MNISTRows, MNISTRowsDataset
from eddies.tasks.moving_mnist import MovingMNIST as MovingMNIST  # registers moving_mnist
from eddies.tasks.particles import Particles as Particles  # registers particles
from eddies.tasks.synthetic import SyntheticRegression, TensorDictDataset
from eddies.tasks.user_data import HFDataset as HFDataset  # registers hf_dataset (and tensors)
from eddies.tasks.user_data import Tensors as Tensors  # registers tensors
from eddies.tasks.weizmann_horse import WeizmannHorse as WeizmannHorse  # registers weizmann_horse

__version__ = "0.1.0"

__all__ = ["__version__", "MNISTRows", "MNISTRowsDataset", "SyntheticRegression", "TensorDictDataset"]

"""eddies.tasks: task plug-ins (data preparation, batch layout, metrics, pictures).

Importing the package registers every task: ``mnist_rows``, ``weizmann_horse`` and
``synthetic_regression`` (seeded linear-Gaussian data for smoke tests).
"""

from eddies.tasks.mnist_rows import MNISTRows, MNISTRowsDataset
from eddies.tasks.synthetic import SyntheticRegression, TensorDictDataset
from eddies.tasks.weizmann_horse import WeizmannHorse as WeizmannHorse  # registers weizmann_horse

__all__ = ["MNISTRows", "MNISTRowsDataset", "SyntheticRegression", "TensorDictDataset"]

"""eddies.tasks: task plug-ins (data preparation, batch layout, metrics, pictures).

Importing the package registers every task: ``mnist_rows``.
"""

from eddies.tasks.mnist_rows import MNISTRows, MNISTRowsDataset

__all__ = ["MNISTRows", "MNISTRowsDataset"]

"""Writing and testing a plug-in layer, on the worked plug-in package of ``examples/plugin``.

    .venv/bin/python examples/plugin_layer.py [RUN_DIR]

``examples/plugin`` is a complete third-party package: one module defining the sinh-arcsinh
bijection z = sinh(δ asinh(x) - ε) (Jones & Pewsey 2009), registered as ``flows/sinh_arcsinh``
with two small examples for the conformance kit, an entry point in its ``pyproject.toml`` (so
``.venv/bin/python -m pip install -e examples/plugin`` makes every recipe able to name it), and
a one-line test. This script takes the three steps an author takes with it:

1. register: the plug-in's module registers the layer when imported (installed, eddies finds it
   through its entry point; here it is imported from ``examples/plugin/src`` when not installed);
2. test: eddies' conformance kit checks it (invertibility, the log-det against the autograd
   Jacobian in float64, batch independence, gradients, save/load, shape errors), as
   ``examples/plugin/tests`` does with pytest;
3. use: a model spec names it like any layer. An unconditional flow [sinh_arcsinh,
   elementwise_affine] is fitted on skewed, heavy-tailed 2-D data, next to the Gaussian alone
   ([elementwise_affine]): the plug-in's validation NLL is lower.

``EDDIES_EXAMPLE_TINY=1`` trains a few steps only (the test suite's setting). See
docs/plugins.md for the walk-through and docs/python-api.md for ``fit``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from eddies.core import FLOWS
from eddies.core.testing import check_bijection_conformance
from eddies.engine import fit

TINY = os.environ.get("EDDIES_EXAMPLE_TINY", "") not in ("", "0")
PLUGIN_SRC = Path(__file__).resolve().parent / "plugin" / "src"


def register_plugin() -> None:
    """Step 1: import the plug-in (installed, or from examples/plugin/src), which registers it."""
    if importlib.util.find_spec("eddies_example_plugin") is None:
        sys.path.insert(0, str(PLUGIN_SRC))
    import eddies_example_plugin  # noqa: F401 (registers flows/sinh_arcsinh)

    entry = FLOWS.get("sinh_arcsinh")
    print(f"registered flows/{entry.ref} from {entry.source}: {entry.summary}")


def skewed(n: int, seed: int) -> torch.Tensor:
    """Draws x = sinh((asinh(z) + ε) / δ), z ~ N(0, I_2): skewed (ε = 0.8), heavy-tailed (δ = 0.6)."""
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    return torch.sinh((torch.asinh(z) + 0.8) / 0.6)


def main(run_dir: Path) -> None:
    register_plugin()
    check_bijection_conformance("sinh_arcsinh")  # step 2: raises ConformanceError on the first failure
    print("conformance kit: sinh_arcsinh passes every check on its declared examples")
    n = 256 if TINY else 4000
    data = {"train": {"y": skewed(n, 0)}, "validation": {"y": skewed(n // 2, 1)}}
    train = {"epochs": 1 if TINY else 40, "batch_size": 64 if TINY else 200, "threads": 1, "log_every": 50,
             "optimizer": {"type": "adam", "lr": 0.05}, "samples": False}
    nll = {}
    for name, layers in (("sinh_arcsinh + affine", [{"type": "sinh_arcsinh"}, {"type": "elementwise_affine"}]),
                         ("affine (a Gaussian)", [{"type": "elementwise_affine"}])):
        model = {"type": "conditional_flow", "flow": {"type": "chain", "layers": layers}, "samples": 4}
        run = fit(model, data, run_dir / name.split()[0], **train)  # step 3: named like any layer
        nll[name] = run.metrics["val_nll"]
    for name, value in nll.items():
        print(f"{name:>22}: validation NLL {value:.3f} nats")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/examples/plugin_layer"))

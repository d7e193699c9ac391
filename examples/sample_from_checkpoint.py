"""Sample from a trained checkpoint: ``load_model`` needs the model's components, not its task.

    .venv/bin/python examples/sample_from_checkpoint.py RUN_DIR [X ...]

RUN_DIR is a run directory (its latest checkpoint), ``RUN_DIR/checkpoints/best`` or a checkpoint
folder, e.g. the one ``examples/conditional_flow_on_tensors.py`` trained. The checkpoint's
``state.json`` records the model's spec and the shapes of its data (which tensor is the
condition, which the target), so the model is rebuilt and its weights loaded without the data
or the task. For each condition value X (default -1, 0, 1) it draws 2000 samples at
temperatures 1 and 0.7 and prints their mean distance from the origin (for the ring of the
training example, 1 + X / 2) and the sample-mean prediction. See docs/python-api.md.
"""

from __future__ import annotations

import sys

import torch

from eddies.engine import load_model


def main(checkpoint: str, values: list[float]) -> None:
    model = load_model(checkpoint)
    data = model.data
    if data.condition is None or tuple(data.condition_shape) != (1,):
        raise SystemExit(f"error: this example conditions on one number; {checkpoint}'s model has condition "
                         f"{data.condition!r} of shape {data.condition_shape}")
    x = torch.tensor(values).reshape(-1, 1)
    torch.manual_seed(0)
    with torch.no_grad():
        for temperature in (1.0, 0.7):
            draws = model.sample({data.condition: x}, samples=2000, temperature=temperature)  # (2000, B, 2)
            radius = draws.norm(dim=-1).mean(0)
            print(f"temperature {temperature}: " + ", ".join(
                f"x={v:+.2f}: mean |y| {r:.3f}" for v, r in zip(values, radius.tolist(), strict=True)))
        prediction = model.predict({data.condition: x})
    print("sample-mean prediction:", [[round(v, 3) for v in row] for row in prediction.tolist()])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: .venv/bin/python examples/sample_from_checkpoint.py RUN_DIR [X ...]\n{__doc__}")
    main(sys.argv[1], [float(v) for v in sys.argv[2:]] or [-1.0, 0.0, 1.0])

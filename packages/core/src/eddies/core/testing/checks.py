"""The conformance checks every registered bijection must pass (run in float64).

1. ``inverse(forward(x)) == x`` and ``forward(inverse(z)) == z`` (tight tolerance);
2. the forward log-det equals ``log|det J|`` of the full Jacobian from ``torch.func.jacrev``,
   and the inverse log-det is its negative;
3. a sample's output and log-det do not depend on the other samples of its batch;
4. every parameter receives a finite, non-zero gradient from a log-likelihood loss;
5. a save/load round trip through safetensors (into a freshly built layer) reproduces outputs
   exactly;
6. conditional layers: all of the above with random contexts, and the output changes with the
   context;
plus: float32 gives float32 outputs close to float64's, and wrong shapes raise ``ShapeError``.

Before the checks the layer sees one warm-up batch (data-dependent initialisation, e.g. ActNorm)
and its parameters are perturbed, so that zero-initialised layers are not trivially the identity.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from eddies.core.errors import ShapeError
from eddies.core.testing.inputs import draw_inputs

TOLERANCE = {"rtol": 1e-7, "atol": 1e-8}
LOGDET_TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}


class ConformanceError(AssertionError):
    """A bijection broke the contract; the message names the layer, the example and the check."""


def _fail(where: str, check: str, message: str) -> None:
    raise ConformanceError(f"{where}: {check}: {message}")


def _max_diff(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def _close(a: Tensor, b: Tensor, tol: Mapping[str, float]) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, **tol)


def perturb(layer: torch.nn.Module, seed: int, scale: float = 0.1) -> None:
    """Add ``scale``-sized noise to every floating parameter (in place, reproducibly)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            if p.is_floating_point():
                p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _call(layer, x, context, inverse=False):
    fn = layer.inverse if inverse else layer
    return fn(x, context) if context is not None else fn(x)


def check_invertibility(layer, x, context, where):
    """Check 1: both compositions are the identity; log-dets of shape (batch,) cancel."""
    z, logdet = _call(layer, x, context)
    if logdet.shape != (x.shape[0],):
        _fail(where, "logdet shape", f"expected ({x.shape[0]},), got {tuple(logdet.shape)}")
    if tuple(z.shape[1:]) != tuple(layer.out_shape):
        _fail(where, "out_shape", f"forward gave event shape {tuple(z.shape[1:])}, out_shape says {layer.out_shape}")
    x_back, inv_logdet = _call(layer, z, context, inverse=True)
    if not _close(x_back, x, TOLERANCE):
        _fail(where, "inverse(forward(x)) != x", f"max |diff| = {_max_diff(x_back, x):.3g}")
    if not _close(inv_logdet, -logdet, LOGDET_TOLERANCE):
        _fail(where, "inverse logdet != -forward logdet", f"{inv_logdet.tolist()} vs {(-logdet).tolist()}")
    z_again, _ = _call(layer, x_back, context)
    if not _close(z_again, z, TOLERANCE):
        _fail(where, "forward(inverse(z)) != z", f"max |diff| = {_max_diff(z_again, z):.3g}")
    return z, logdet


def check_logdet(layer, x, context, z, logdet, where):
    """Check 2: ``logdet`` equals ``log|det ∂z/∂x|`` from ``torch.func.jacrev``, per sample."""
    from torch.func import jacrev

    for i in range(x.shape[0]):
        ctx = None if context is None else context[i : i + 1]

        def f(v, ctx=ctx):
            return _call(layer, v.reshape(1, *x.shape[1:]), ctx)[0].reshape(-1)

        jac = jacrev(f)(x[i].reshape(-1))
        if jac.shape[0] != jac.shape[1]:
            _fail(where, "Jacobian", f"not square: {tuple(jac.shape)} (output size differs from input size)")
        sign, expected = torch.linalg.slogdet(jac)
        if sign == 0 or not torch.isfinite(expected):
            _fail(where, "Jacobian", f"singular at sample {i} (not invertible)")
        if not _close(logdet[i], expected, LOGDET_TOLERANCE):
            _fail(where, "logdet != log|det J|", f"sample {i}: layer says {float(logdet[i].detach()):.10g}, "
                  f"autograd Jacobian gives {float(expected.detach()):.10g}")
        _, inv_ld = _call(layer, z[i : i + 1], ctx, inverse=True)
        if not _close(inv_ld[0], -expected, LOGDET_TOLERANCE):
            _fail(where, "inverse logdet != -log|det J|", f"sample {i}: {float(inv_ld[0]):.10g} vs {float(-expected.detach()):.10g}")


def check_batch_independence(layer, x, context, z, logdet, where):
    """Check 3: each sample's output and log-det equal those of the sample run alone."""
    for i in range(x.shape[0]):
        ctx = None if context is None else context[i : i + 1]
        z_i, ld_i = _call(layer, x[i : i + 1], ctx)
        if not (_close(z_i, z[i : i + 1], TOLERANCE) and _close(ld_i, logdet[i : i + 1], LOGDET_TOLERANCE)):
            _fail(where, "batch dependence", f"sample {i} alone differs from sample {i} in its batch "
                  f"(max |dz| = {_max_diff(z_i, z[i : i + 1]):.3g})")
        x_i, _ = _call(layer, z[i : i + 1], ctx, inverse=True)
        if not _close(x_i, x[i : i + 1], TOLERANCE):
            _fail(where, "batch dependence", f"inverse of sample {i} alone differs from its batched inverse")


def check_parameter_gradients(module: torch.nn.Module, loss: Callable[[], Tensor], where: str,
                              params: list[tuple[str, torch.nn.Parameter]] | None = None) -> None:
    """Backpropagate ``loss()`` and fail unless each of ``params`` (default: every parameter that
    requires a gradient) receives a finite, non-zero gradient; nothing runs without parameters."""
    if params is None:
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        return
    module.zero_grad(set_to_none=True)
    loss().backward()
    for name, p in params:
        if p.grad is None:
            _fail(where, "gradient", f"parameter {name!r} received no gradient")
        if not torch.isfinite(p.grad).all():
            _fail(where, "gradient", f"parameter {name!r} has a non-finite gradient")
        if not p.grad.abs().max() > 0:
            _fail(where, "gradient", f"parameter {name!r} has an all-zero gradient")
    module.zero_grad(set_to_none=True)


def check_gradients(layer, x, context, where):
    """Check 4: a Gaussian log-likelihood gives every parameter a finite, non-zero gradient."""
    def loss():
        z, logdet = _call(layer, x, context)
        log_p = -0.5 * z.reshape(z.shape[0], -1).pow(2).sum(1) + logdet
        return -log_p.mean()

    check_parameter_gradients(layer, loss, where)


def reload(module: torch.nn.Module, make: Callable[[], torch.nn.Module], where: str) -> torch.nn.Module:
    """Save ``module``'s state dict with safetensors and load it into a freshly built float64
    module, returned in eval mode; fail if the state dict keys differ."""
    from safetensors.torch import load_file, save_file

    state = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.safetensors"
        save_file(state, str(path))
        torch.manual_seed(12345)  # a fresh build draws other weights and random buffers unless they are saved
        fresh = make().double()
        missing, unexpected = fresh.load_state_dict(load_file(str(path)), strict=False)
    if missing or unexpected:
        _fail(where, "save/load", f"state dict keys differ: missing {missing}, unexpected {unexpected}")
    return fresh.eval()


def check_save_load(layer, make: Callable[[], torch.nn.Module], x, context, z, logdet, where):
    """Check 5: safetensors save, load into a freshly built layer, identical outputs."""
    fresh = reload(layer, make, where)
    with torch.no_grad():
        z2, ld2 = _call(fresh, x, context)
        x2, _ = _call(fresh, z, context, inverse=True)
    if not (torch.equal(z2, z) and torch.equal(ld2, logdet)):
        _fail(where, "save/load", f"reloaded layer's forward differs (max |dz| = {_max_diff(z2, z):.3g}); "
              "is some state (an init flag, a permutation) outside the state dict?")
    if not torch.allclose(x2, x, **TOLERANCE):
        _fail(where, "save/load", "reloaded layer's inverse differs")


def check_context_dependence(layer, x, context, z, where):
    """Check 6: another context changes the output."""
    other = torch.randn_like(context) * 2 + 1
    z2, _ = _call(layer, x, other)
    if torch.allclose(z2, z, rtol=1e-9, atol=1e-12):
        _fail(where, "context", "the output does not change with the context")


def check_dtype(layer, x, context, z, where):
    """float32 in, float32 out, close to the float64 result."""
    layer32 = copy.deepcopy(layer).float()
    z32, ld32 = _call(layer32, x.float(), None if context is None else context.float())
    if z32.dtype != torch.float32 or ld32.dtype != torch.float32:
        _fail(where, "dtype", f"float32 input gave {z32.dtype} / {ld32.dtype} outputs")
    scale = max(1.0, float(z.abs().max()))
    if not torch.allclose(z32.double(), z, rtol=1e-3, atol=1e-3 * scale):
        _fail(where, "dtype", f"float32 output far from float64's (max |diff| {_max_diff(z32.double(), z):.3g})")


def check_shape_errors(layer, x, context, where):
    """Wrong event shapes (and a missing or unexpected context) raise ``ShapeError``."""
    bad = torch.cat([x, x[..., :1]], dim=-1)
    attempts = [("input with a wrong event shape", bad, context)]
    if context is not None:
        attempts.append(("a missing context", x, None))
        attempts.append(("a context with a wrong shape", x, torch.cat([context, context[..., :1]], dim=-1)))
    elif layer.context_shape is None:  # an unconditional layer refuses a context, never ignores it
        attempts.append(("a context given to an unconditional layer", x, torch.zeros_like(x)))
    for what, xx, cc in attempts:
        try:
            _call(layer, xx, cc)
        except ShapeError:
            continue
        except Exception as err:  # noqa: BLE001 (any other error is a contract violation)
            _fail(where, "shape check", f"{what} raised {type(err).__name__} ({err}), not ShapeError")
        _fail(where, "shape check", f"{what} did not raise ShapeError")


@contextmanager
def single_thread():
    """Run in one intra-op thread: the kit's tiny float64 tensors are slower with more (thread
    start-up dominates); the previous setting is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_example(make: Callable[[], torch.nn.Module], example: Mapping[str, Any], where: str,
                seed: int = 0, batch: int = 3) -> None:
    """Build a layer with ``make`` and run every check on inputs drawn from ``seed``."""
    with single_thread():
        _run_example(make, example, where, seed, batch)


def _run_example(make, example, where, seed, batch):
    torch.manual_seed(seed)
    layer = make().double()
    warm_x, warm_c = draw_inputs(example, 8, seed + 1)
    with torch.no_grad():
        _call(layer, warm_x, warm_c)  # data-dependent initialisation happens here, once
    perturb(layer, seed + 2, float(example.get("perturb", 0.1)))
    layer.eval()
    x, context = draw_inputs(example, batch, seed)
    with torch.no_grad():
        z, logdet = check_invertibility(layer, x, context, where)
        check_batch_independence(layer, x, context, z, logdet, where)
        check_shape_errors(layer, x, context, where)
        check_dtype(layer, x, context, z, where)
        if context is not None:
            check_context_dependence(layer, x, context, z, where)
        check_save_load(layer, make, x, context, z, logdet, where)
    if not all(math.isfinite(v) for v in logdet.tolist()):
        _fail(where, "logdet", f"non-finite log-det {logdet.tolist()}")
    check_logdet(layer, x[:2], None if context is None else context[:2], z[:2], logdet[:2], where)
    check_gradients(layer, x, context, where)

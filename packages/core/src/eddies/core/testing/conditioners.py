"""The conditioner conformance kit: checks that a conditioner honours its contract (in float64).

Every registered conditioner declares small examples at registration::

    @register("conditioners", "my_net", config=MyNetConfig, summary="...",
              examples=[{"config": {"hidden": 4}, "in_shape": (3,), "out_shape": (5,), "batch": (2,)}])

An example's keys: ``config`` (config fields, validated like a recipe spec), ``in_shape`` and
``out_shape`` (the runtime arguments; ``out_shape`` may be ``None``), ``batch`` (the leading
axes of an input: any number for a plain conditioner, ``(B, T)`` for a
:class:`~eddies.core.SequenceConditioner`), optionally ``inputs`` (``{"low", "high"}`` or
``{"scale"}``, as in the flow kit; default standard normal), ``perturb`` (the size of the noise
added to the parameters, default 0.1) and ``autoregressive`` (below).

For each example the kit builds the conditioner, runs one training-mode warm-up batch
(data-dependent initialisation), perturbs every parameter (so zero-started layers are not
trivially constant), switches to ``eval`` mode and checks:

1. ``output_shape()`` is a tuple of ints (one tuple for a sequence conditioner; a plain
   conditioner may state a dict name -> tuple) stated before anything runs, equal to the real
   output's event shape, and equal to the requested ``out_shape`` when there is one;
2. batch independence: row ``i`` of the output is unchanged when every other row of the input
   is redrawn, and the autograd Jacobian of row ``i`` (a random contraction of it, one
   backward pass per row) is zero on every other row; the rows are the flattened leading axes,
   for a sequence conditioner the first axis;
3. a wrong input shape raises ``ShapeError`` naming the class (for a sequence conditioner also
   a missing time axis in ``forward`` and an extra one in ``step``);
4. float32 parameters and inputs give float32 outputs close to float64's;
5. a safetensors round trip of the state dict into a freshly built conditioner reproduces the
   outputs exactly (registered ones: the spec also survives a JSON round trip);
6. every parameter receives a finite, non-zero gradient;
7. sequence conditioners: causality (output ``t`` unchanged when inputs after ``t`` are
   redrawn, and its autograd Jacobian zero on them, checked per row and step), the step API
   (``step`` from ``initial_state`` T times) equals teacher-forced ``forward``, ``scan`` then
   ``forward(rest, state)`` continues the sequence, and ``initial_state(B)`` without device and
   dtype holds tensors of the parameters' dtype;
8. an example that declares ``"autoregressive": {"ranks": R, "strict": bool}`` (``R`` a nested
   list with the shape of the trailing axes of ``in_shape``, and of the output, that it orders,
   e.g. an LMConv's ``ordering_ranks(...).tolist()`` over ``(H, W)``): the output at position
   ``p`` depends on the input at ``q`` only where ``R[q] < R[p]`` (``strict``, mask type A) or
   ``R[q] <= R[p]``, checked on the autograd Jacobian position by position.

One line in a third party's tests::

    from eddies.core.testing import conditioner_conformance_test
    test_my_net = conditioner_conformance_test("my_net")

or ``check_conditioner_conformance("my_net")`` (raises :class:`ConformanceError`); an
unregistered class is checked with ``check_conditioner_conformance(MyNet, examples=[...])``.
The pytest plugin parametrises any test taking a ``conditioner_case`` argument over every
registered conditioner (``--eddies-conditioners=a,b`` restricts it). A conditioner registered
without examples is a failing case, never a skipped one.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from eddies.core.conditioner import SequenceConditioner
from eddies.core.errors import ShapeError
from eddies.core.registry import Entry, get_registry
from eddies.core.spec import validate_spec
from eddies.core.testing.cases import (
    Case,
    kit_settings,
    make_cases,
    no_examples,
    parametrised_test,
    registered_entries,
)
from eddies.core.testing.checks import (
    ConformanceError,
    _fail,
    _max_diff,
    check_parameter_gradients,
    perturb,
    reload,
    single_thread,
)
from eddies.core.testing.inputs import draw_inputs

TOLERANCE = {"rtol": 1e-7, "atol": 1e-9}
EXAMPLE_KEYS = {"config", "in_shape", "out_shape", "batch", "inputs", "perturb", "autoregressive"}


# inputs and outputs ----------------------------------------------------------------------------

def _draw(example: Mapping[str, Any], lead: tuple[int, ...], seed: int) -> Tensor:
    """An input ``(*lead, *in_shape)`` drawn from ``seed`` as the example's ``inputs`` say."""
    spec = {"shape": (*lead[1:], *example["in_shape"]), "inputs": example.get("inputs")}
    return draw_inputs(spec, lead[0], seed)[0]


def _parts(y: Any) -> list[Tensor]:
    """The output tensor(s), a dict's in key order."""
    return [y[k] for k in sorted(y)] if isinstance(y, Mapping) else [y]


def _rows(y: Any, lead: int) -> Tensor:
    """The output as ``(rows, features)``: leading ``lead`` axes flattened (dict values joined)."""
    parts = _parts(y)
    rows = math.prod(parts[0].shape[:lead])
    return torch.cat([p.reshape(rows, -1) for p in parts], dim=1)


def _event_shapes(y: Any, lead: int) -> Any:
    if isinstance(y, Mapping):
        return {k: tuple(v.shape[lead:]) for k, v in y.items()}
    return tuple(y.shape[lead:])


def _is_shape(s: Any) -> bool:
    return isinstance(s, tuple) and all(isinstance(d, int) and not isinstance(d, bool) for d in s)


# the checks ------------------------------------------------------------------------------------

def check_declared_shape(net: nn.Module, example: Mapping[str, Any], where: str) -> Any:
    """Check 1 (before running): ``output_shape()`` is a shape, and the requested one if given."""
    declared = net.output_shape()
    sequence = isinstance(net, SequenceConditioner)
    if sequence and not _is_shape(declared):
        _fail(where, "output_shape", f"a sequence conditioner states one tuple of ints, got {declared!r}")
    if not (_is_shape(declared) or (isinstance(declared, Mapping) and all(map(_is_shape, declared.values())))):
        _fail(where, "output_shape", f"must be a tuple of ints or a dict name -> tuple, got {declared!r}")
    requested = example.get("out_shape")
    if requested is not None and declared != tuple(requested):
        _fail(where, "output_shape", f"out_shape={tuple(requested)} was requested, but output_shape() "
              f"states {declared}; honour it or raise ShapeError")
    return declared


def check_real_shape(y: Any, declared: Any, lead: tuple[int, ...], where: str) -> None:
    """Check 1 (after running): the output is ``(*lead, *output_shape())``."""
    expected = "a dict of tensors" if isinstance(declared, Mapping) else "a tensor"
    if not (isinstance(y, Mapping) and all(isinstance(v, Tensor) for v in y.values())
            if isinstance(declared, Mapping) else isinstance(y, Tensor)):
        _fail(where, "declared output shape", f"output_shape() states {declared}, so forward returns "
              f"{expected}; it returned {type(y).__name__}")
    got = _event_shapes(y, len(lead))
    batch = [tuple(v.shape[: len(lead)]) for v in (y.values() if isinstance(y, Mapping) else [y])]
    if got != declared or any(b != lead for b in batch):
        _fail(where, "declared output shape", f"output_shape() states {declared}, but inputs with "
              f"leading axes {lead} gave outputs of event shape {got} and leading axes {batch[0]}")


def check_perturbed_rows(net: nn.Module, x: Tensor, y: Any, lead: int, fresh: Tensor, where: str) -> None:
    """Check 2: redrawing every other row of the input (from ``fresh``, drawn like ``x``) leaves
    row ``i`` of the output unchanged."""
    flat_x, flat_fresh = x.reshape(-1, *x.shape[lead:]), fresh.reshape(-1, *x.shape[lead:])
    y_rows = _rows(y, lead)
    for i in range(flat_x.shape[0]):
        other = flat_fresh.clone()
        other[i] = flat_x[i]
        with torch.no_grad():
            got = _rows(net(other.reshape(x.shape)), lead)
        if not torch.allclose(got[i], y_rows[i], **TOLERANCE):
            _fail(where, "batch dependence", f"row {i} of the output changed (max |diff| "
                  f"{_max_diff(got[i], y_rows[i]):.3g}) when only the other rows of the input did")


def _random_contraction(y: Any, pick: Callable[[Tensor], Tensor], seed: int) -> Tensor:
    """``sum(v * y)`` with ``v`` random where ``pick`` is true (the Jacobian block, contracted)."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for part in _parts(y):
        weights = torch.randn(part.shape, generator=generator, dtype=part.dtype) * pick(part)
        total = total + (weights * part).sum()
    return total


def check_row_jacobian(net: nn.Module, x: Tensor, lead: int, where: str) -> None:
    """Check 2: the autograd Jacobian of output row ``i`` is zero on every other input row."""
    x = x.detach().requires_grad_(True)
    y = net(x)
    rows = math.prod(x.shape[:lead])
    for i in range(rows):
        def pick(part: Tensor, i: int = i) -> Tensor:
            mask = torch.zeros(rows, dtype=part.dtype)
            mask[i] = 1
            return mask.reshape(*part.shape[:lead], *[1] * (part.dim() - lead))

        (grad,) = torch.autograd.grad(_random_contraction(y, pick, i), x, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        grad = grad.reshape(rows, -1).abs().amax(1)
        grad[i] = 0
        if grad.max() > 0:
            j = int(grad.argmax())
            _fail(where, "batch dependence", f"the autograd Jacobian of output row {i} is non-zero on "
                  f"input row {j} (max |d y_{i} / d x_{j}| ~ {float(grad[j]):.3g})")


def check_shape_errors(net: nn.Module, x: Tensor, where: str) -> None:
    """Check 3: wrong input shapes raise ``ShapeError`` naming the class."""
    wide = torch.cat([x, x[..., :1]], dim=-1)
    attempts: list[tuple[str, Callable[[], Any]]] = [("an input with a wrong event shape", lambda: net(wide))]
    if isinstance(net, SequenceConditioner):
        state = net.initial_state(x.shape[0], x.device, x.dtype)
        attempts += [
            ("forward on one step (no time axis)", lambda: net(x[:, 0])),
            ("step on a sequence (an extra time axis)", lambda: net.step(x, state)),
        ]
    name = type(net).__name__
    for what, call in attempts:
        try:
            call()
        except ShapeError as err:
            if name not in str(err):
                _fail(where, "shape check", f"{what} raised ShapeError without naming {name}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 (any other error is a contract violation)
            _fail(where, "shape check", f"{what} raised {type(err).__name__} ({err}), not ShapeError")
        _fail(where, "shape check", f"{what} did not raise ShapeError")


def check_dtype(net: nn.Module, x: Tensor, y: Any, where: str) -> None:
    """Check 4: float32 in, float32 out, close to the float64 result."""
    net32 = copy.deepcopy(net).float()
    with torch.no_grad():
        y32 = net32(x.float())
    for got, ref in zip(_parts(y32), _parts(y), strict=True):
        if got.dtype != torch.float32:
            _fail(where, "dtype", f"float32 parameters and inputs gave a {got.dtype} output")
        scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
        if not torch.allclose(got.double(), ref, rtol=1e-3, atol=1e-3 * scale):
            _fail(where, "dtype", f"float32 output far from float64's (max |diff| {_max_diff(got.double(), ref):.3g})")


def check_save_load(net: nn.Module, make: Callable[[], nn.Module], x: Tensor, y: Any, where: str) -> None:
    """Check 5: safetensors save, load into a freshly built conditioner, identical outputs."""
    fresh = reload(net, make, where)
    with torch.no_grad():
        y2 = fresh(x)
    for got, ref in zip(_parts(y2), _parts(y), strict=True):
        if not torch.equal(got, ref):
            _fail(where, "save/load", f"the reloaded conditioner's output differs (max |diff| "
                  f"{_max_diff(got, ref):.3g}); is some state (an init flag, a permutation) outside the state dict?")


def check_gradients(net: nn.Module, x: Tensor, where: str) -> None:
    """Check 6: a random linear loss of the output gives every parameter a finite, non-zero gradient."""
    check_parameter_gradients(
        net, lambda: _random_contraction(net(x), lambda part: torch.ones((), dtype=part.dtype), 3), where)


def check_causality(net: SequenceConditioner, x: Tensor, y: Tensor, fresh: Tensor, where: str) -> None:
    """Check 7: output ``t`` does not change when inputs after ``t`` are redrawn (from ``fresh``),
    and its autograd Jacobian is zero on them (and on the other sequences)."""
    batch, steps = x.shape[:2]
    for t in range(steps - 1):
        later = x.clone()
        later[:, t + 1:] = fresh[:, t + 1:]
        with torch.no_grad():
            got = net(later)[:, : t + 1]
        if not torch.allclose(got, y[:, : t + 1], **TOLERANCE):
            _fail(where, "causality", f"outputs 0..{t} changed (max |diff| {_max_diff(got, y[:, : t + 1]):.3g}) "
                  f"when only inputs after step {t} did")
    x = x.detach().requires_grad_(True)
    out = net(x)
    for b in range(batch):
        for t in range(steps):
            def pick(part: Tensor, b: int = b, t: int = t) -> Tensor:
                mask = torch.zeros(batch, steps, dtype=part.dtype)
                mask[b, t] = 1
                return mask.reshape(batch, steps, *[1] * (part.dim() - 2))

            (grad,) = torch.autograd.grad(_random_contraction(out, pick, b * steps + t), x,
                                          retain_graph=True, allow_unused=True)
            if grad is None:
                continue
            size = grad.reshape(batch, steps, -1).abs().amax(2)
            if t + 1 < steps and size[b, t + 1:].max() > 0:
                _fail(where, "causality", f"the autograd Jacobian of output step {t} is non-zero on input "
                      f"step {t + 1 + int(size[b, t + 1:].argmax())} (a later one)")
            size[b] = 0
            if size.max() > 0:
                _fail(where, "batch dependence", f"the autograd Jacobian of sequence {b}'s output is "
                      f"non-zero on sequence {int(size.max(1).values.argmax())}'s inputs")


def check_steps(net: SequenceConditioner, x: Tensor, y: Tensor, where: str) -> None:
    """Check 7: ``step`` T times from ``initial_state`` equals teacher forcing; ``scan`` continues."""
    batch, steps = x.shape[:2]
    with torch.no_grad():
        default = [t.dtype for t in _tensors(net.initial_state(batch)) if t.is_floating_point()]
        if any(d != x.dtype for d in default):
            _fail(where, "initial_state", f"initial_state(batch) of a {x.dtype} conditioner holds {default} "
                  "tensors; without device and dtype it follows the parameters (state_options)")
        state = net.initial_state(batch, x.device, x.dtype)
        for t in range(steps):
            out, state = net.step(x[:, t], state)
            if out.shape != y[:, t].shape:
                _fail(where, "step", f"step {t} gave shape {tuple(out.shape)}, teacher forcing {tuple(y[:, t].shape)}")
            if not torch.allclose(out, y[:, t], **TOLERANCE):
                _fail(where, "step != teacher forcing", f"step {t} of the step API differs from forward's "
                      f"output {t} (max |diff| {_max_diff(out, y[:, t]):.3g})")
        cut = steps // 2
        if cut:
            head, state = net.scan(x[:, :cut])
            rest = net(x[:, cut:], state)
            if not (torch.allclose(head, y[:, :cut], **TOLERANCE) and torch.allclose(rest, y[:, cut:], **TOLERANCE)):
                _fail(where, "scan/forward(state)", f"scan over steps 0..{cut - 1} then forward from its state "
                      "differs from forward over the whole sequence")


def _tensors(state: Any) -> list[Tensor]:
    """The tensors of a state (nested tuples, lists and dicts)."""
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, Mapping):
        return [t for v in state.values() for t in _tensors(v)]
    if isinstance(state, list | tuple):
        return [t for v in state for t in _tensors(v)]
    return []


def check_autoregressive(net: nn.Module, example: Mapping[str, Any], seed: int, where: str) -> None:
    """Check 8: output position ``p`` depends on input position ``q`` only where the declared ranks
    allow it (``ranks[q] < ranks[p]`` when strict, ``<=`` otherwise)."""
    declared = example["autoregressive"]
    ranks = torch.as_tensor(declared["ranks"])
    strict = bool(declared.get("strict", False))
    k = ranks.dim()
    x = _draw(example, (1,), seed).requires_grad_(True)
    y = net(x)
    if tuple(x.shape[-k:]) != tuple(ranks.shape) or tuple(y.shape[-k:]) != tuple(ranks.shape):
        _fail(where, "autoregressive", f"declared ranks of shape {tuple(ranks.shape)} do not match the "
              f"trailing axes of the input {tuple(x.shape[1:])} and the output {tuple(y.shape[1:])}")
    flat_ranks = ranks.reshape(-1)
    positions = flat_ranks.numel()
    for p in range(positions):
        def pick(part: Tensor, p: int = p) -> Tensor:
            mask = torch.zeros(positions, dtype=part.dtype)
            mask[p] = 1
            return mask.reshape(ranks.shape)

        (grad,) = torch.autograd.grad(_random_contraction(y, pick, p), x, retain_graph=True, allow_unused=True)
        if grad is None:
            continue
        seen = grad.reshape(-1, positions).abs().amax(0) > 0
        allowed = flat_ranks < flat_ranks[p] if strict else flat_ranks <= flat_ranks[p]
        bad = seen & ~allowed
        if bad.any():
            q = int(bad.nonzero()[0])
            order = "<" if strict else "<="
            _fail(where, "autoregressive", f"output position {p} (rank {int(flat_ranks[p])}) depends on input "
                  f"position {q} (rank {int(flat_ranks[q])}), but the example declares rank[q] {order} rank[p]")


# running an example ----------------------------------------------------------------------------

def _lead(net: nn.Module, example: Mapping[str, Any], sizes: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    declared = tuple(int(s) for s in example.get("batch", (2,)))
    if isinstance(net, SequenceConditioner) and len(declared) != 2:
        _fail(where, "example", f"a sequence conditioner's example declares batch (B, T), got {declared}")
    if not declared:
        _fail(where, "example", "batch must name at least one leading axis")
    lead = tuple(sizes) if sizes is not None else declared
    if isinstance(net, SequenceConditioner):  # two steps at least: causality, recurrent gradients
        return max(2, lead[0]), max(2, lead[1])
    return (max(2, lead[0]), *lead[1:])  # two rows at least, so batch independence means something


def run_conditioner_example(make: Callable[[], nn.Module], example: Mapping[str, Any], where: str,
                            seed: int = 0, sizes: tuple[int, ...] | None = None) -> None:
    """Build a conditioner with ``make`` and run every check on inputs drawn from ``seed``
    (leading axes ``sizes``, default the example's ``batch``; the first at least 2, and a
    sequence's ``T`` too)."""
    unknown = set(example) - EXAMPLE_KEYS
    if unknown:
        _fail(where, "example", f"unknown keys {sorted(unknown)}; known: {sorted(EXAMPLE_KEYS)}")
    with single_thread():
        _run(make, example, where, seed, sizes)


def _run(make, example, where, seed, sizes):
    torch.manual_seed(seed)
    net = make().double()
    declared = check_declared_shape(net, example, where)
    lead = _lead(net, example, sizes, where)
    sequence = isinstance(net, SequenceConditioner)
    axes = 1 if sequence else len(lead)  # the independent rows: a sequence's batch axis, else all
    net.train()
    with torch.no_grad():
        net(_draw(example, (max(lead[0], 4), *lead[1:]), seed + 1))  # data-dependent initialisation
    perturb(net, seed + 2, float(example.get("perturb", 0.1)))
    net.eval()
    x, fresh = _draw(example, lead, seed), _draw(example, lead, seed + 7)
    with torch.no_grad():
        y = net(x)
    check_real_shape(y, declared, lead, where)
    if not all(torch.isfinite(part).all() for part in _parts(y)):
        _fail(where, "finite", "the output has non-finite entries")
    check_perturbed_rows(net, x, y, axes, fresh, where)
    check_shape_errors(net, x, where)
    check_dtype(net, x, y, where)
    check_save_load(net, make, x, y, where)
    if sequence:
        check_causality(net, x, y, fresh, where)
        check_steps(net, x, y, where)
    else:
        check_row_jacobian(net, x, axes, where)
    if "autoregressive" in example:
        if sequence:
            _fail(where, "example", "'autoregressive' orders positions of one input; a sequence "
                  "conditioner's causality over time is always checked")
        check_autoregressive(net, example, seed, where)
    check_gradients(net, x, where)


# cases -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConditionerCase(Case):
    """One conformance case: a registry entry (or a bare class) and one of its examples."""

    def run(self, seed: int = 0, sizes: tuple[int, ...] | None = None) -> None:
        """Run every check once on inputs drawn from ``seed``."""
        if self.example is None:
            raise no_examples(self.name, ("config", "in_shape", "out_shape", "batch"), "docs/conditioners.md")
        run_conditioner_example(self.make_factory(self.example), self.example, self.name, seed, sizes)

    def check(self) -> None:
        """Run the checks on Hypothesis-drawn seeds and leading sizes (3 fixed seeds without it).

        The first axis is drawn from 2-3, the others from 1-3; like the flow kit, a fifth of the
        active profile's ``max_examples`` and no deadline.
        """
        if self.example is None:
            self.run()
        try:
            from hypothesis import given
            from hypothesis import strategies as st
        except ImportError:
            for seed in range(3):
                self.run(seed=seed)
            return
        axes = len(self.example.get("batch", (2,)))
        sizes = st.tuples(st.integers(2, 3), *[st.integers(1, 3)] * (axes - 1))
        kit_settings()(given(st.integers(0, 2**31 - 1), sizes)(lambda seed, lead: self.run(seed=seed, sizes=lead)))()


def _spec_factory(entry: Entry) -> Callable[[Mapping[str, Any]], Callable[[], nn.Module]]:
    def factory(example: Mapping[str, Any]) -> Callable[[], nn.Module]:
        spec = validate_spec({"type": entry.ref, **example.get("config", {})}, "conditioners")
        if validate_spec(json.loads(json.dumps(spec.to_dict())), "conditioners") != spec:
            raise ConformanceError(f"conditioners/{entry.ref}: spec: {spec.to_dict()} does not survive a JSON round trip")
        out_shape = example.get("out_shape")
        return lambda: spec.build(in_shape=tuple(example["in_shape"]),
                                  out_shape=None if out_shape is None else tuple(out_shape))

    return factory


def _cases(label: str, examples: list[Mapping[str, Any]],
           factory: Callable[[Mapping[str, Any]], Callable[[], nn.Module]]) -> list[ConditionerCase]:
    return make_cases(label, examples, factory, ConditionerCase)


def conditioner_cases(names: Iterable[str] | None = None) -> list[ConditionerCase]:
    """Cases of the named conditioners (``name`` or ``name@N``), or of every registered one."""
    return [case for entry in registered_entries("conditioners", names)
            for case in _cases(f"conditioners/{entry.ref}", entry.meta.get("examples") or [], _spec_factory(entry))]


def conditioner_cases_for_class(target: Callable[..., nn.Module], examples: list[Mapping[str, Any]],
                                name: str | None = None) -> list[ConditionerCase]:
    """Cases for an unregistered class called as ``target(**config, in_shape=, out_shape=)``."""
    def factory(example: Mapping[str, Any]) -> Callable[[], nn.Module]:
        out_shape = example.get("out_shape")
        return lambda: target(**example.get("config", {}), in_shape=tuple(example["in_shape"]),
                              out_shape=None if out_shape is None else tuple(out_shape))

    return _cases(name or getattr(target, "__name__", "conditioner"), examples, factory)


def check_conditioner_conformance(target: Any, examples: list[Mapping[str, Any]] | None = None) -> None:
    """Run the whole kit on one conditioner; raise :class:`ConformanceError` on the first failure.

    ``target`` is a registered name (``"lstm"`` or ``"lstm@1"``; its declared examples are used
    unless ``examples`` is given) or an unregistered class with ``examples``.
    """
    if isinstance(target, str):
        if examples:
            entry = get_registry("conditioners").get(target)
            cases = _cases(f"conditioners/{entry.ref}", list(examples), _spec_factory(entry))
        else:
            cases = conditioner_cases([target])
    else:
        cases = conditioner_cases_for_class(target, list(examples or []))
    for case in cases:
        case.check()


def conditioner_conformance_test(*names: str) -> Callable[..., None]:
    """A parametrised pytest test over the named conditioners (every registered one if none)::

        test_my_net = conditioner_conformance_test("my_net")   # in a test module: one line
    """
    return parametrised_test(conditioner_cases(names or None), "test_conditioner_conformance")

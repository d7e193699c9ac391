"""The prior conformance kit: checks that a prior honours the contract, for eddies' priors and plug-ins.

Every registered prior declares small examples at registration, like a bijection (see
:mod:`eddies.core.testing.inputs` for the keys ``config``, ``shape``, ``context_shape``,
``inputs``, ``context_inputs``, ``perturb``); a :class:`eddies.core.TemporalPrior` adds
``steps``, the length of the sequences it is checked on (default 3)::

    @register("priors", "my_prior", config=MyConfig, summary="...",
              examples=[{"config": {}, "shape": (2,), "context_shape": None},
                        {"config": {}, "shape": (1,), "context_shape": (3,), "steps": 2}])

For each example the kit builds the prior in float64, adds small noise to every parameter (so
zero-started layers act), switches to eval mode and checks, on inputs drawn from a seed
(Hypothesis draws seeds and batch sizes when installed), that

1. ``log_prob`` has the batch shape (two leading batch axes for a plain prior, ``(batch,)`` for a
   temporal one), the input's dtype and finite values, and that flattening the batch axes
   changes nothing;
2. each row's log-density equals that of the row scored alone (no batch coupling);
3. ``sample`` returns the documented shape (``(n, *shape)``, one draw per context row, or
   ``(batch, steps, *shape)`` for temporal priors, also continuing a ``history``), in the
   prior's dtype, finite; temperature 0 is deterministic and temperature 1 is not;
4. a wrong event shape, a missing context and an unexpected context raise ``ShapeError`` (no
   conditioning is silently lost);
5. the state dict saved with safetensors and loaded into a freshly built prior (other seed)
   reproduces ``log_prob`` exactly;
6. where implemented (``NotImplementedError`` skips it), ``distribution(context)`` (temporal:
   ``step_distribution(z, context)``) is a ``torch.distributions.Distribution`` with
   ``event_shape == prior.shape``, the batch shape of the context (temporal: ``(batch, T)``) and
   the prior's log-density;
7. temporal priors are causal: from the autograd Jacobian (``torch.func.jacrev``),
   ``log_prob_steps[:, s]`` does not depend on ``z_t`` for any ``t > s`` and does depend on
   ``z_s``;
8. a negative log-likelihood gives every parameter a finite, non-zero gradient;

and, once per example, where the event (for temporal priors: ``steps * prod(shape)``) has 1 or 2
dimensions:

9. the density integrates to one by quadrature on a grid (tolerance 2e-3), and the mean and
   covariance of 40 000 samples match the quadrature moments within 5 standard errors.

Failures raise :class:`eddies.core.testing.ConformanceError` naming the prior, the example and
the check, e.g. ``priors/my_prior@1[0]: normalisation: the density integrates to 1.35``.

One line in a plug-in's tests::

    from eddies.core.testing import prior_conformance_test
    test_my_prior = prior_conformance_test("my_prior")

or ``check_prior_conformance("my_prior")``, or, for an unregistered class,
``check_prior_conformance(MyPrior, examples=[...])``. The pytest plugin parametrises any test
taking a ``prior_case`` argument over every registered prior's examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from eddies.core.errors import ShapeError
from eddies.core.prior import Prior, TemporalPrior
from eddies.core.testing.cases import (
    Case,
    class_factory,
    make_cases,
    parametrised_test,
    registered_entries,
    spec_factory,
)
from eddies.core.testing.checks import (
    _fail,
    _max_diff,
    check_parameter_gradients,
    perturb,
    reload,
    single_thread,
)
from eddies.core.testing.inputs import draw_inputs

TOLERANCE = {"rtol": 1e-7, "atol": 1e-8}
DISTRIBUTION_TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}
DEFAULT_STEPS = 3
GRADIENT_BATCH = 16
QUADRATURE_MAX_DIMS = 2
QUADRATURE_SAMPLES = 40_000
MASS_TOLERANCE = 2e-3
STANDARD_ERRORS = 5.0
D64 = torch.float64

Factory = Callable[[], Prior]


def _steps(example: Mapping[str, Any]) -> int:
    return int(example.get("steps", DEFAULT_STEPS))


def event_of(prior: Prior, example: Mapping[str, Any]) -> tuple[int, ...]:
    """Shape of one draw without the batch: ``(steps, *shape)`` for temporal priors."""
    if isinstance(prior, TemporalPrior):
        return (_steps(example), *prior.shape)
    return tuple(prior.shape)


def draw_prior_inputs(prior: Prior, example: Mapping[str, Any], batch: tuple[int, ...], seed: int,
                      dtype: torch.dtype = D64) -> tuple[Tensor, Tensor | None]:
    """``z`` of shape ``(*batch, *event)`` and the context ``(*batch, *context_shape)`` or ``None``
    (a temporal prior's context is one per sequence), reproducible from ``seed``."""
    n = math.prod(batch)
    z, c = draw_inputs({**example, "shape": event_of(prior, example)}, n, seed, dtype)
    z = z.reshape(*batch, *z.shape[1:])
    return z, None if c is None else c.reshape(*batch, *c.shape[1:])


def draw_samples(prior: Prior, example: Mapping[str, Any], n: int, context: Tensor | None,
                 temperature: float = 1.0, history: Tensor | None = None) -> Tensor:
    """Draws as the contract spells them: ``n`` without a context, one per context row with one."""
    count = n if context is None and history is None else None
    if isinstance(prior, TemporalPrior):
        return prior.sample(count, context=context, temperature=temperature, steps=_steps(example),
                            history=history)
    return prior.sample(count, context=context, temperature=temperature)


def _build(make: Factory, example: Mapping[str, Any], seed: int) -> Prior:
    torch.manual_seed(seed)
    prior = make().double()
    perturb(prior, seed + 2, float(example.get("perturb", 0.1)))
    return prior.eval()


# the checks -------------------------------------------------------------------------------
def check_log_prob(prior: Prior, z: Tensor, context: Tensor | None, batch: tuple[int, ...], where: str) -> Tensor:
    """Check 1: shape, dtype and finiteness of ``log_prob``; flattened batch axes agree."""
    lp = prior.log_prob(z, context)
    if tuple(lp.shape) != tuple(batch):
        _fail(where, "log_prob shape", f"z of shape {tuple(z.shape)} gave {tuple(lp.shape)}, expected {batch}")
    if lp.dtype != z.dtype:
        _fail(where, "log_prob dtype", f"{z.dtype} input gave {lp.dtype}")
    if not torch.isfinite(lp).all():
        _fail(where, "log_prob", f"non-finite log-densities {lp.tolist()}")
    if len(batch) > 1:
        flat = prior.log_prob(z.reshape(-1, *z.shape[len(batch):]),
                              None if context is None else context.reshape(-1, *context.shape[len(batch):]))
        if not torch.allclose(flat, lp.reshape(-1), **TOLERANCE):
            _fail(where, "batch axes", f"scoring with batch axes {batch} differs from the flattened batch "
                  f"(max |diff| {_max_diff(flat, lp.reshape(-1)):.3g})")
    return lp


def check_batch_independence(prior: Prior, z: Tensor, context: Tensor | None, lp: Tensor, where: str) -> None:
    """Check 2: every row scored alone has the log-density it has in its batch."""
    lead = lp.dim()
    zs, lps = z.reshape(-1, *z.shape[lead:]), lp.reshape(-1)
    cs = None if context is None else context.reshape(-1, *context.shape[lead:])
    for i in range(zs.shape[0]):
        alone = prior.log_prob(zs[i : i + 1], None if cs is None else cs[i : i + 1])
        if not torch.allclose(alone, lps[i : i + 1], **TOLERANCE):
            _fail(where, "batch dependence", f"row {i} alone has log-density {float(alone[0]):.10g}, "
                  f"{float(lps[i]):.10g} in its batch")


def check_sampling(prior: Prior, example: Mapping[str, Any], z: Tensor, context: Tensor | None, where: str) -> None:
    """Check 3: sample shapes, dtype and finiteness; temperature 0 deterministic, 1 random.

    Without a context ``n = z.shape[0]`` draws; with one, one draw per context row (all of the
    context's batch axes); a temporal prior also continues a one-step ``history``."""
    rows = z.shape[0]
    if isinstance(prior, TemporalPrior):
        expected = (rows, *event_of(prior, example))
        draws = [("sample", lambda t: draw_samples(prior, example, rows, context, t)),
                 ("sample continuing a history",
                  lambda t: draw_samples(prior, example, rows, context, t, history=z[:, :1]))]
    else:
        lead = (rows,) if context is None else tuple(context.shape[: context.dim() - len(prior.context_shape)])
        expected = (*lead, *prior.shape)
        draws = [("sample", lambda t: draw_samples(prior, example, rows, context, t))]
    for what, draw in draws:
        x = draw(1.0)
        if tuple(x.shape) != expected:
            _fail(where, "sample shape", f"{what} gave {tuple(x.shape)}, expected {expected}")
        if x.dtype != z.dtype:
            _fail(where, "sample dtype", f"{what} of a {z.dtype} prior gave {x.dtype}")
        if not torch.isfinite(x).all():
            _fail(where, "sample", f"{what} gave non-finite values")
        if torch.equal(x, draw(1.0)):
            _fail(where, "sample", f"two {what} draws at temperature 1 are equal (not random?)")
        if not torch.equal(draw(0.0), draw(0.0)):
            _fail(where, "temperature 0", f"{what} at temperature 0 is not deterministic")


def check_shape_errors(prior: Prior, z: Tensor, context: Tensor | None, where: str) -> None:
    """Check 4: a wrong event shape, a missing and an unexpected context raise ``ShapeError``."""
    bad = torch.cat([z, z[..., :1]], dim=-1)
    attempts = [("z with a wrong event shape", bad, context)]
    if context is None:
        attempts.append(("a context given to an unconditional prior", z, torch.zeros(*z.shape[:1], 2, dtype=z.dtype)))
    else:
        attempts.append(("a missing context", z, None))
        attempts.append(("a context with a wrong shape", z, torch.cat([context, context[..., :1]], dim=-1)))
    for what, zz, cc in attempts:
        try:
            prior.log_prob(zz, cc)
        except ShapeError:
            continue
        except Exception as err:  # noqa: BLE001 (any other error is a contract violation)
            _fail(where, "shape check", f"{what} raised {type(err).__name__} ({err}), not ShapeError")
        _fail(where, "shape check", f"{what} did not raise ShapeError")


def check_save_load(prior: Prior, make: Factory, z: Tensor, context: Tensor | None, lp: Tensor, where: str) -> None:
    """Check 5: safetensors save, load into a freshly built prior, identical log-densities."""
    again = reload(prior, make, where).log_prob(z, context)
    if not torch.equal(again, lp):
        _fail(where, "save/load", f"the reloaded prior's log_prob differs (max |diff| {_max_diff(again, lp):.3g}); "
              "is some state outside the state dict?")


def check_distribution(prior: Prior, z: Tensor, context: Tensor | None, where: str) -> None:
    """Check 6: ``distribution`` / ``step_distribution``, where implemented, is the prior's density."""
    from torch.distributions import Distribution

    temporal = isinstance(prior, TemporalPrior)
    try:
        if temporal:
            dist, what = prior.step_distribution(z, context), "step_distribution(z, context)"
            expected_batch, target = tuple(z.shape[:2]), prior.log_prob_steps(z, context)
        else:
            dist, what = prior.distribution(context), "distribution(context)"
            expected_batch = () if context is None else tuple(context.shape[: context.dim() - len(prior.context_shape)])
            target = prior.log_prob(z, context)
    except NotImplementedError:
        return
    if not isinstance(dist, Distribution):
        _fail(where, "distribution", f"{what} returned {type(dist).__name__}, not a torch.distributions.Distribution")
    if tuple(dist.event_shape) != tuple(prior.shape) or tuple(dist.batch_shape) != expected_batch:
        _fail(where, "distribution", f"{what} has batch {tuple(dist.batch_shape)} and event {tuple(dist.event_shape)}, "
              f"expected batch {expected_batch} and event {tuple(prior.shape)}")
    got = dist.log_prob(z)
    if got.shape != target.shape:
        _fail(where, "distribution", f"{what}.log_prob has shape {tuple(got.shape)}, the prior's {tuple(target.shape)}")
    if not torch.allclose(got, target, **DISTRIBUTION_TOLERANCE):
        _fail(where, "distribution", f"{what}.log_prob differs from the prior's log-density "
              f"(max |diff| {_max_diff(got, target):.3g})")


def check_causality(prior: TemporalPrior, z: Tensor, context: Tensor | None, where: str) -> None:
    """Check 7: ``d log_prob_steps[:, s] / d z_t`` is zero for ``t > s`` and not for ``t = s``."""
    from torch.func import jacrev

    z, context = z[:1], None if context is None else context[:1]
    T = z.shape[1]
    jac = jacrev(lambda x: prior.log_prob_steps(x, context))(z)  # (1, T, 1, T, *shape)
    jac = jac.detach().reshape(T, T, -1).abs().amax(-1)  # [s, t] = max |d term_s / d z_t|
    for s in range(T):
        future = jac[s, s + 1 :]
        if future.numel() and future.max() > 1e-10:
            t = s + 1 + int(future.argmax())
            _fail(where, "causality", f"log_prob_steps[:, {s}] depends on z_{t} (a later step; |d/dz| = "
                  f"{float(jac[s, t]):.3g}): a step's term may depend on z_<=t only")
        if not jac[s, s] > 0:
            _fail(where, "causality", f"log_prob_steps[:, {s}] does not depend on z_{s} itself")


def check_gradients(prior: Prior, z: Tensor, context: Tensor | None, where: str) -> None:
    """Check 8: a negative log-likelihood gives every parameter a finite, non-zero gradient."""
    params = [(n, p) for n, p in prior.named_parameters() if p.requires_grad and p.numel()]
    check_parameter_gradients(prior, lambda: -prior.log_prob(z, context).mean(), where, params)


def check_density(make: Factory, example: Mapping[str, Any], where: str, seed: int = 0) -> None:
    """Check 9: normalisation by quadrature and sample moments, for events of 1-2 dimensions.

    The grid spans the samples' range plus 6 standard deviations on each side (4001 points in
    1-d, 301 x 301 in 2-d); the prior is evaluated in float32 (float64 convolutions are slow on
    CPU), the sums are float64. Events of more dimensions are not checked.
    """
    prior = _build(make, example, seed).float()
    event = event_of(prior, example)
    dim = math.prod(event)
    if dim > QUADRATURE_MAX_DIMS:
        return
    n = QUADRATURE_SAMPLES
    _, c = draw_prior_inputs(prior, example, (1,), seed, torch.float32)
    torch.manual_seed(seed)
    with torch.no_grad():
        x = draw_samples(prior, example, n, None if c is None else c.expand(n, *c.shape[1:]))
    x = x.reshape(n, dim).double()
    spread = x.std(0)
    lo, hi = x.min(0).values - 6 * spread, x.max(0).values + 6 * spread
    points = 4001 if dim == 1 else 301
    axes = [torch.linspace(float(a), float(b), points, dtype=D64) for a, b in zip(lo, hi, strict=True)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
    cell = math.prod(float(a[1] - a[0]) for a in axes)
    c_grid = None if c is None else c.expand(grid.shape[0], *c.shape[1:])
    with torch.no_grad():
        p = prior.log_prob(grid.float().reshape(-1, *event), c_grid).double().exp()
    mass = float(p.sum() * cell)
    if not abs(mass - 1.0) < MASS_TOLERANCE:
        _fail(where, "normalisation", f"the density integrates to {mass:.6g} over a {points}-point grid "
              f"per axis on [{lo.tolist()}, {hi.tolist()}], not 1")
    w = p / p.sum()
    mean = w @ grid
    cov = (w[:, None] * (grid - mean)).T @ (grid - mean)
    centred = x - x.mean(0)
    se_mean = centred.std(0) / math.sqrt(n)
    if not ((x.mean(0) - mean).abs() <= STANDARD_ERRORS * se_mean).all():
        _fail(where, "sample moments", f"sample mean {x.mean(0).tolist()} differs from the density's "
              f"{mean.tolist()} by more than {STANDARD_ERRORS:g} standard errors {se_mean.tolist()}")
    prods = centred[:, :, None] * centred[:, None, :]
    se_cov = prods.std(0) / math.sqrt(n)
    if not ((prods.mean(0) - cov).abs() <= STANDARD_ERRORS * se_cov).all():
        _fail(where, "sample moments", f"sample covariance {prods.mean(0).tolist()} differs from the "
              f"density's {cov.tolist()} by more than {STANDARD_ERRORS:g} standard errors")


def run_prior_example(make: Factory, example: Mapping[str, Any], where: str, seed: int = 0, batch: int = 3) -> None:
    """Build a prior with ``make`` and run checks 1-8 on inputs drawn from ``seed``."""
    with single_thread():
        prior = _build(make, example, seed)
        temporal = isinstance(prior, TemporalPrior)
        shape = (batch,) if temporal else (batch, 2)
        z, context = draw_prior_inputs(prior, example, shape, seed)
        with torch.no_grad():
            lp = check_log_prob(prior, z, context, shape, where)
            check_batch_independence(prior, z, context, lp, where)
            check_sampling(prior, example, z, context, where)
            check_shape_errors(prior, z, context, where)
            check_save_load(prior, make, z, context, lp, where)
            check_distribution(prior, z, context, where)
        if temporal:
            check_causality(prior, z, context, where)
        # reaching every parameter is structural: a larger batch keeps a small ReLU net from
        # being dead on every drawn row by chance
        wide = (GRADIENT_BATCH,) if temporal else (GRADIENT_BATCH, 2)
        check_gradients(prior, *draw_prior_inputs(prior, example, wide, seed), where)


# cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriorCase(Case):
    """One prior conformance case: a registry entry (or a bare class) and one of its examples.

    :meth:`run` runs checks 1-8 once; :meth:`check` runs them on Hypothesis-drawn seeds and batch
    sizes (as the flow kit does), then the density check 9 once.
    """

    docs: ClassVar[str] = "see docs/priors.md"
    runner: ClassVar[Callable[..., None]] = staticmethod(run_prior_example)

    def check(self) -> None:
        super().check()
        with single_thread():
            check_density(self.make_factory(self.example), self.example, self.name)


def prior_cases(names: Iterable[str] | None = None, examples: list[Mapping[str, Any]] | None = None) -> list[PriorCase]:
    """Cases of the named priors (``name`` or ``name@N``), or of every registered one; with
    ``examples``, those replace the declared ones."""
    return [case for entry in registered_entries("priors", names)
            for case in make_cases(f"priors/{entry.ref}", list(examples or entry.meta.get("examples") or []),
                                   spec_factory("priors", entry), PriorCase)]


def prior_cases_for_class(target: Callable[..., Any], examples: list[Mapping[str, Any]],
                          name: str | None = None) -> list[PriorCase]:
    """Cases for an unregistered class or factory called as ``target(**config, shape=, context_shape=)``."""
    return make_cases(name or getattr(target, "__name__", "prior"), list(examples), class_factory(target), PriorCase)


def check_prior_conformance(target: Any, examples: list[Mapping[str, Any]] | None = None) -> None:
    """Run the whole kit on one prior; raise :class:`ConformanceError` on the first failure.

    ``target`` is a registered name (its declared examples are used unless ``examples`` is
    given) or an unregistered class/factory with ``examples``.
    """
    cases = prior_cases([target], examples) if isinstance(target, str) else prior_cases_for_class(target, examples or [])
    for case in cases:
        case.check()


def prior_conformance_test(*names: str) -> Callable[..., None]:
    """A parametrised pytest test over the named priors (every registered one if none)::

        test_my_prior = prior_conformance_test("my_prior")   # in a test module: one line
    """
    return parametrised_test(prior_cases(names or None), "test_prior_conformance")

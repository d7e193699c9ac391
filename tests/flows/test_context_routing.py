"""Context routing: a layer built with a context_shape either uses it or states None and refuses a
context; composites route the context only to their conditional children (bijection.py)."""

import pytest
import torch

import eddies.flows  # noqa: F401 (registers the layers)
from eddies.core import FLOWS, ShapeError, build, validate_spec
from eddies.flows.chain import composite_context_shape

CONTEXT = (2,)
UNCONDITIONAL_EXAMPLES = [
    pytest.param(entry.name, example, id=f"{entry.name}[{i}]")
    for entry in FLOWS.entries() if entry.distribution == "eddies-flows"
    for i, example in enumerate(entry.meta.get("examples", [])) if example.get("context_shape") is None
]


@pytest.mark.parametrize(("name", "example"), UNCONDITIONAL_EXAMPLES)
def test_a_layer_built_with_a_context_uses_it_or_refuses_it(name, example):
    spec = validate_spec({"type": name, **example["config"]}, "flows")
    layer = spec.build(shape=tuple(example["shape"]), context_shape=CONTEXT).double()
    low, high = example.get("inputs", {}).get("low", -1.0), example.get("inputs", {}).get("high", 1.0)
    x = low + (high - low) * torch.rand(3, *example["shape"], dtype=torch.float64)
    context = torch.randn(3, *CONTEXT, dtype=torch.float64)
    assert layer.context_shape in (None, CONTEXT)
    if layer.context_shape is None:  # unconditional: a context is an error, never ignored
        with pytest.raises(ShapeError, match="unconditional|without context"):
            layer(x, context)
        z, _ = layer(x)
        with pytest.raises(ShapeError, match="unconditional|without context"):
            layer.inverse(z, context)
    else:  # it took the context (maf, or a composite holding one)
        with pytest.raises(ShapeError, match="conditional"):
            layer(x)


def test_composites_route_the_context_to_conditional_children_only():
    mlp = {"type": "mlp", "hidden": [4]}
    flow = build({"type": "chain", "layers": ["reverse", {"type": "cond_actnorm", "net": mlp}, "actnorm"]},
                 "flows", shape=(3,), context_shape=CONTEXT)
    assert flow.context_shape == CONTEXT
    assert [layer.context_shape for layer in flow.layers] == [None, CONTEXT, None]
    z, logdet = flow(torch.randn(4, 3), torch.randn(4, 2))  # the unconditional layers would raise
    assert z.shape == (4, 3) and logdet.shape == (4,)


def test_a_composite_without_a_conditional_child_states_none():
    assert composite_context_shape([], CONTEXT) is None
    flow = build({"type": "chain", "layers": ["reverse", {"type": "chain", "layers": ["actnorm"]}]},
                 "flows", shape=(3,), context_shape=CONTEXT)
    assert flow.context_shape is None and flow.layers[1].context_shape is None
    with pytest.raises(ShapeError, match="Chain is unconditional|Chain.*without context"):
        flow(torch.randn(4, 3), torch.randn(4, 2))

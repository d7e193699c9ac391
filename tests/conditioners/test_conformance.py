"""Every registered conditioner: the declared output shape matches the real one."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load, save

from eddies.core import CONDITIONERS, build, validate_spec

CASES = [
    pytest.param(entry, i, id=f"{entry.name}-{i}")
    for entry in CONDITIONERS.entries()
    if entry.distribution == "eddies-conditioners"
    for i in range(len(entry.meta.get("examples", [])))
]


def test_every_conditioner_declares_examples():
    missing = [e.name for e in CONDITIONERS.entries()
               if e.distribution == "eddies-conditioners" and not e.meta.get("examples")]
    assert not missing


@pytest.mark.parametrize(("entry", "index"), CASES)
@settings(max_examples=5)
@given(data=st.data())
def test_declared_output_shape_matches(entry, index, data):
    ex = entry.meta["examples"][index]
    net = build({"type": entry.ref, **ex["config"]}, "conditioners",
                in_shape=ex["in_shape"], out_shape=ex["out_shape"])
    net.eval()
    batch = tuple(data.draw(st.integers(1, 3), label=f"batch{i}") for i in range(len(ex["batch"])))
    x = torch.randn(*batch, *ex["in_shape"])
    y = net(x)
    declared = net.output_shape()
    assert y.shape == (*batch, *declared)
    if ex["out_shape"] is not None:
        assert tuple(declared) == tuple(ex["out_shape"])


@pytest.mark.parametrize(("entry", "index"), CASES)
def test_spec_round_trip_and_safetensors_reload(entry, index):
    ex = entry.meta["examples"][index]
    spec = validate_spec({"type": entry.ref, **ex["config"]}, "conditioners")
    assert validate_spec(json.loads(json.dumps(spec.to_dict())), "conditioners") == spec
    torch.manual_seed(0)
    net = spec.build(in_shape=ex["in_shape"], out_shape=ex["out_shape"])
    x = torch.randn(*ex["batch"], *ex["in_shape"])
    net.train()
    net(x)  # data-dependent initialisation, if any
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)  # so zero-started layers are not trivially equal
    net.eval()
    torch.manual_seed(1)
    fresh = spec.build(in_shape=ex["in_shape"], out_shape=ex["out_shape"]).eval()
    fresh.load_state_dict(load(save(net.state_dict())))
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)

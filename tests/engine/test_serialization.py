"""Nested training state <-> safetensors + JSON, without pickle."""

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from eddies.engine.serialization import join_state, split_state


def _roundtrip(tree, prefix="s"):
    skeleton, tensors = split_state(tree, prefix)
    skeleton = json.loads(json.dumps(skeleton))  # what state.json stores
    tensors = safetensors_load(safetensors_save(tensors))
    return join_state(skeleton, tensors)


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.9)),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: torch.optim.AdamW(p, lr=1e-2, amsgrad=True),
])
def test_optimizer_state_roundtrip_continues_identically(make):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = make(net.parameters())
    for _ in range(3):
        net(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    state = opt.state_dict()
    restored = _roundtrip(state)
    _assert_same(state, restored)  # integer parameter ids and the betas tuple survive JSON

    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(net.state_dict())
    opt2 = make(twin.parameters())
    opt2.load_state_dict(restored)
    x = torch.randn(4, 3)
    for model, o in ((net, opt), (twin, opt2)):
        model(x).pow(2).sum().backward()
        o.step()
    assert torch.equal(net.weight, twin.weight)


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False), st.text(max_size=5),
    st.lists(st.floats(-1e3, 1e3, width=32), min_size=0, max_size=4).map(torch.tensor),
)
keys = st.one_of(st.text("abc", min_size=1, max_size=3), st.integers(0, 5))
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(keys, inner, max_size=3)), max_leaves=12)


@given(trees)
def test_any_tree_roundtrips_exactly(tree):
    _assert_same({"root": tree}, _roundtrip({"root": tree}))


def test_objects_that_need_pickle_are_refused_with_their_path():
    with pytest.raises(TypeError, match=r"opt/groups/0/fn.*pickle"):
        split_state({"groups": [{"fn": len}]}, "opt")


def test_missing_tensor_is_named():
    skeleton, _ = split_state({"w": torch.ones(2)}, "m")
    with pytest.raises(KeyError, match="m/w"):
        join_state(skeleton, {})

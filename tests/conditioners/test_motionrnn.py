import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import MotionGRU, PredRNN, SpatioTemporalLSTMCell, neighbourhood_warp
from eddies.core import ShapeError


def _reference_warp(h, a, b, k):
    """h[m + p_ix - a, n + p_iy - b] with zeros outside, by padding and slicing."""
    bsz, c, height, width = h.shape
    pad = k + max(abs(a), abs(b))
    hp = F.pad(h, (pad,) * 4)
    out = []
    for i in range(k * k):
        px, py = i // k - k // 2, i % k - k // 2
        r0, c0 = pad + px - a, pad + py - b
        out.append(hp[:, :, r0:r0 + height, c0:c0 + width])
    return torch.stack(out, 2)


@given(k=st.sampled_from([1, 3, 5]), h=st.integers(1, 5), w=st.integers(1, 5), c=st.integers(1, 3))
def test_zero_offsets_give_the_plain_neighbourhood(k, h, w, c):
    x = torch.randn(2, c, h, w, dtype=torch.float64)
    got = neighbourhood_warp(x, x.new_zeros(2, 2 * k * k, h, w), k)
    torch.testing.assert_close(got, F.unfold(x, k, padding=k // 2).view(2, c, k * k, h, w))


@given(k=st.sampled_from([1, 3]), a=st.integers(-3, 3), b=st.integers(-3, 3), h=st.integers(1, 5),
       w=st.integers(1, 5))
def test_integer_offsets_shift_exactly(k, a, b, h, w):
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    offsets = torch.cat([torch.full((1, k * k, h, w), float(a)), torch.full((1, k * k, h, w), float(b))], 1)
    got = neighbourhood_warp(x, offsets.double(), k)
    torch.testing.assert_close(got, _reference_warp(x, a, b, k), rtol=0, atol=0)


def test_bilinear_interpolation_in_the_unit_square():
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    offsets = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    offsets[0, 0, 1, 1], offsets[0, 1, 1, 1] = -0.25, -0.6  # sample at (1.25, 1.6)
    value = neighbourhood_warp(x, offsets, 1)[0, 0, 0, 1, 1]
    m2, n2 = 0.25, 0.6
    expected = ((1 - m2) * (1 - n2) * x[0, 0, 1, 1] + (1 - m2) * n2 * x[0, 0, 1, 2]
                + m2 * (1 - n2) * x[0, 0, 2, 1] + m2 * n2 * x[0, 0, 2, 2])
    torch.testing.assert_close(value, expected)


def test_gradients_flow_to_offsets_and_map():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    offsets = (torch.randint(-1, 2, (1, 18, 3, 4)) + torch.rand(1, 18, 3, 4) * 0.8 + 0.1).double()
    offsets.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, o: neighbourhood_warp(a, o, 3), (x, offsets))
    neighbourhood_warp(x, offsets, 3).sum().backward()
    assert offsets.grad.abs().sum() > 0


def test_motiongru_trend_is_a_momentum_of_the_transient():
    torch.manual_seed(0)
    gru = MotionGRU(alpha=0.5, in_shape=(4, 4, 4)).double()
    torch.nn.init.normal_(gru.candidate.weight)
    state = gru.initial_state(2, dtype=torch.float64)
    _, (f1, d1) = gru.step(torch.randn(2, 4, 4, 4, dtype=torch.float64), state)
    assert torch.equal(d1, torch.zeros_like(d1)) and f1.abs().sum() > 0  # D'_1 = D'_0 + a (F'_0 - D'_0) = 0
    _, (f2, d2) = gru.step(torch.randn(2, 4, 4, 4, dtype=torch.float64), (f1, d1))
    torch.testing.assert_close(d2, 0.5 * f1)


def test_motiongru_offsets_move_the_state():
    # with zero offsets and trend, the warp only sees the plain neighbourhood; shifting the
    # offsets (through the state) changes the output: the motion path is live
    torch.manual_seed(0)
    gru = MotionGRU(in_shape=(4, 4, 4)).double()
    h = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    zero = gru.initial_state(1, dtype=torch.float64)
    moved = (zero[0], torch.ones_like(zero[1]))
    assert not torch.allclose(gru.step(h, zero)[0], gru.step(h, moved)[0])


def test_st_lstm_motion_highway_is_gated_by_one_minus_o():
    torch.manual_seed(0)
    cell = SpatioTemporalLSTMCell(2, 3, (4, 4), filter_size=3).double()
    x, h, c, m = (torch.randn(1, n, 4, 4, dtype=torch.float64) for n in (2, 3, 3, 3))
    base = cell(x, h, c, m)[0]
    z1, z2 = torch.randn(2, 1, 3, 4, 4, dtype=torch.float64)
    d1, d2, d12 = (cell(x, h, c, m, z)[0] - base for z in (z1, z2, z1 + z2))
    torch.testing.assert_close(d1 + d2, d12)  # linear in the highway
    gate = (cell(x, h, c, m, torch.ones_like(z1))[0] - base)
    assert gate.min() > 0 and gate.max() < 1  # (1 - o) with o a sigmoid


def test_predrnn_zigzag_memory_reaches_the_top_within_a_step():
    torch.manual_seed(0)
    rnn = PredRNN(hidden=3, num_layers=2, filter_size=3, in_shape=(1, 3, 3)).double()
    state = rnn.initial_state(1, dtype=torch.float64)
    memory = state["m"].clone().requires_grad_()  # the top layer's memory from the previous step
    x = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    out, new = rnn.step(x, {**state, "m": memory})
    assert torch.equal(new["h"][-1], out)
    # zigzag: the previous top memory enters the bottom layer, and the new top memory has seen x
    bottom_from_memory, = torch.autograd.grad(new["h"][0].sum(), memory, retain_graph=True)
    top_memory_from_x, = torch.autograd.grad(new["m"].sum(), x)
    assert bottom_from_memory.abs().sum() > 0 and top_memory_from_x.abs().sum() > 0
    assert not torch.equal(new["m"], state["m"])
    assert len(new["motion"]) == 0
    assert len(PredRNN(hidden=4, num_layers=3, motion=True, in_shape=(1, 2, 2)).motion_grus) == 2


def test_errors():
    with pytest.raises(ShapeError, match="H, W even"):
        MotionGRU(in_shape=(4, 3, 4))
    with pytest.raises(ShapeError, match="offsets must have shape"):
        neighbourhood_warp(torch.zeros(1, 1, 3, 3), torch.zeros(1, 2, 3, 3), 3)
    with pytest.raises(ShapeError, match=r"PredRNN: inputs must have shape \(batch, time, 1, 2, 2\), got \(1, 1, 2, 2\)"):
        PredRNN(hidden=2, num_layers=1, in_shape=(1, 2, 2))(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ShapeError, match=r"MotionGRU: step input must have shape \(batch, 4, 2, 4\)"):
        gru = MotionGRU(in_shape=(4, 2, 4))
        gru.step(torch.zeros(1, 1, 4, 2, 4), gru.initial_state(1))

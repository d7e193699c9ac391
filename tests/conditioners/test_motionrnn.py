import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import MotionGRU, PredRNN, SpatioTemporalLSTMCell, neighbourhood_warp
from eddies.conditioners.predrnn import ConvLSTMCell
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
    # supplement eq. 1: D'_t = D'_{t-1} + alpha (F'_{t-1} - D'_{t-1}), and F'_t (not F_t) is carried
    torch.manual_seed(0)
    gru = MotionGRU(alpha=0.5, in_shape=(4, 4, 4)).double()
    torch.nn.init.normal_(gru.candidate.weight)
    state = gru.initial_state(2, dtype=torch.float64)
    _, (f1, d1, _) = gru.step(torch.randn(2, 4, 4, 4, dtype=torch.float64), state)
    assert torch.equal(d1, torch.zeros_like(d1)) and f1.abs().sum() > 0  # D'_1 = D'_0 + a (F'_0 - D'_0) = 0
    _, (f2, d2, _) = gru.step(torch.randn(2, 4, 4, 4, dtype=torch.float64), (f1, d1, state[2]))
    torch.testing.assert_close(d2, 0.5 * f1)


def _pair(**kwargs):
    """A paper and an authors MotionGRU with the same weights where both have them (3x3 kernels)."""
    torch.manual_seed(0)
    paper = MotionGRU(in_shape=(4, 4, 4), **kwargs).double()
    authors = MotionGRU(in_shape=(4, 4, 4), variant="authors", filter_size=3, **kwargs).double()
    for conv in (paper.gates, paper.candidate, paper.mask_conv):
        torch.nn.init.normal_(conv.weight, std=0.5)
    state = paper.state_dict()
    state["gate.weight"] = torch.nn.functional.pad(state["gate.weight"], (1, 1, 1, 1))  # 1x1 as a centred 3x3
    authors.load_state_dict(state)
    return paper, authors


def test_motiongru_paper_gates_with_the_previous_state_and_authors_with_the_current():
    paper, authors = _pair()
    h0, h1 = torch.randn(2, 1, 4, 4, 4, dtype=torch.float64)
    for gru in (paper, authors):
        state = gru.initial_state(1, dtype=torch.float64)
        _, state = gru.step(h0, state)
        assert torch.equal(state[2], h0)  # the previous input is carried
    # paper: X_t = g H_{t-1} + (1 - g) Dec(H'_t); authors: X_t = g H_t + (1 - g) Dec(H'_t)
    x_paper, _ = paper.step(h1, (*paper.initial_state(1, dtype=torch.float64)[:2], h0))
    x_zero, _ = paper.step(h1, paper.initial_state(1, dtype=torch.float64))
    assert not torch.allclose(x_paper, x_zero)  # depends on H_{t-1}
    x_a, _ = authors.step(h1, (*authors.initial_state(1, dtype=torch.float64)[:2], h0))
    x_a0, _ = authors.step(h1, authors.initial_state(1, dtype=torch.float64))
    torch.testing.assert_close(x_a, x_a0, rtol=0, atol=0)  # authors: H_{t-1} is not read


def test_motiongru_authors_carries_the_motion_filter():
    # same weights, same two inputs: paper carries F'_t, authors F_t = F'_t + D'_t; the trend is
    # the same momentum of whatever is carried
    paper, authors = _pair()
    inputs = torch.randn(3, 1, 4, 4, 4, dtype=torch.float64)
    sp, sa = paper.initial_state(1, dtype=torch.float64), authors.initial_state(1, dtype=torch.float64)
    carried_p, carried_a, trend_p, trend_a = [], [], [], []
    for h in inputs:
        _, sp = paper.step(h, sp)
        _, sa = authors.step(h, sa)
        carried_p.append(sp[0])
        trend_p.append(sp[1])
        carried_a.append(sa[0])
        trend_a.append(sa[1])
    torch.testing.assert_close(carried_a[0], carried_p[0])  # D'_1 = 0: F_1 = F'_1
    torch.testing.assert_close(trend_a[1], 0.5 * carried_a[0])
    torch.testing.assert_close(trend_p[1], 0.5 * carried_p[0])
    assert not torch.allclose(carried_a[2], carried_p[2])  # from t = 2 the trend enters the carried state


def test_motiongru_authors_kernels_and_zero_init():
    gru = MotionGRU(in_shape=(8, 4, 4), variant="authors", filter_size=5)
    assert gru.enc.kernel_size == (5, 5) and gru.gate.kernel_size == (5, 5)
    assert all(not conv.weight.any() for conv in (gru.gates, gru.candidate, gru.mask_conv))
    paper = MotionGRU(in_shape=(8, 4, 4))
    assert paper.enc.kernel_size == (3, 3) and paper.gate.kernel_size == (1, 1)  # W_1x1


def test_motiongru_offsets_move_the_state():
    # with zero offsets and trend, the warp only sees the plain neighbourhood; shifting the
    # offsets (through the state) changes the output: the motion path is live
    torch.manual_seed(0)
    gru = MotionGRU(in_shape=(4, 4, 4)).double()
    h = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    zero = gru.initial_state(1, dtype=torch.float64)
    moved = (zero[0], torch.ones_like(zero[1]), zero[2])
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


def _stack_pair():
    torch.manual_seed(0)
    kwargs = dict(hidden=4, num_layers=3, filter_size=3, motion=True, in_shape=(1, 4, 4))
    return PredRNN(**kwargs).double(), PredRNN(variant="authors", **kwargs).double()


def test_predrnn_paper_keeps_the_cell_output_and_authors_overwrites_it():
    paper, authors = _stack_pair()
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    for rnn in (paper, authors):
        state = rnn.initial_state(2, dtype=torch.float64)
        top, new = rnn.step(x, state)
        assert torch.equal(new["h"][-1], top)
        for i, gru in enumerate(rnn.motion_grus):
            cell_output = new["motion"][i][2]  # each MotionGRU keeps its input H^l_t
            warped, _ = gru.step(cell_output, state["motion"][i])  # X^l_t
            if rnn is paper:
                assert torch.equal(new["h"][i], cell_output)
            else:  # authors: H^l_t <- X^l_t
                assert torch.equal(new["h"][i], warped) and not torch.allclose(warped, cell_output)


def test_predrnn_authors_gives_the_bottom_layer_a_highway():
    paper, authors = _stack_pair()
    assert paper.input_highway is None and authors.input_highway.kernel_size == (1, 1)
    calls = []
    cell = authors.cells[0]
    handle = cell.register_forward_hook(lambda m, args, out: calls.append(args))
    authors.step(torch.randn(1, 1, 4, 4, dtype=torch.float64), authors.initial_state(1, dtype=torch.float64))
    handle.remove()
    assert len(calls[0]) == 5 and calls[0][4] is not None  # (x, h, c, m, highway)
    assert all(g.variant == "authors" for g in authors.motion_grus)
    assert all(g.variant == "paper" for g in paper.motion_grus)
    with pytest.raises(ValueError, match="needs motion"):
        PredRNN(hidden=2, num_layers=2, variant="authors", in_shape=(1, 2, 2))


def test_conv_lstm_stack_has_no_zigzag_memory():
    torch.manual_seed(0)
    rnn = PredRNN(hidden=3, num_layers=2, filter_size=3, cell="conv_lstm", in_shape=(1, 4, 4)).double()
    assert all(isinstance(c, ConvLSTMCell) for c in rnn.cells)
    state = rnn.initial_state(1, dtype=torch.float64)
    _, new = rnn.step(torch.randn(1, 1, 4, 4, dtype=torch.float64), state)
    assert torch.equal(new["m"], state["m"])


def test_conv_lstm_cell_equations():
    # Shi et al. eq. 3 written out with the cell's own convolutions
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, (4, 4), filter_size=3).double()
    torch.nn.init.normal_(cell.peephole)
    x, h, c = (torch.randn(1, n, 4, 4, dtype=torch.float64) for n in (2, 3, 3))
    i, f, g, o = (a + b for a, b in zip(cell.conv_x(x).chunk(4, 1), cell.conv_h(h).chunk(4, 1), strict=True))
    w_ci, w_cf, w_co = cell.peephole
    c_t = torch.sigmoid(f + w_cf * c + 1.0) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
    h_t = torch.sigmoid(o + w_co * c_t) * torch.tanh(c_t)
    got_h, got_c, _ = cell(x, h, c, c)
    torch.testing.assert_close(got_c, c_t)
    torch.testing.assert_close(got_h, h_t)

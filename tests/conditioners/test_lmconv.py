import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import LMConv, Ordering, ordering_ranks
from eddies.conditioners.lmconv import lmconv_masks
from eddies.core import RecipeError, ShapeError, validate_spec

CURVES = ["raster", "column_major", "s_curve", "hilbert"]
orderings = st.builds(
    Ordering, curve=st.sampled_from(CURVES), transpose=st.booleans(), flip_rows=st.booleans(),
    flip_cols=st.booleans(),
)


def _allowed(ordering, h, w, k, d, mask_type):
    """Reference dependency matrix [i, j]: j in i's dilated window and allowed by the ordering."""
    ranks = ordering_ranks(ordering, h, w).flatten().tolist()
    r = k // 2
    out = torch.zeros(h * w, h * w, dtype=torch.bool)
    for i in range(h * w):
        for j in range(h * w):
            dy, dx = j // w - i // w, j % w - i % w
            in_window = dy % d == 0 and dx % d == 0 and abs(dy) <= d * r and abs(dx) <= d * r
            earlier = ranks[j] < ranks[i] if mask_type == "A" else ranks[j] <= ranks[i]
            out[i, j] = in_window and earlier
    return out


def _dependencies(net, shape):
    x = torch.randn(1, *shape, dtype=torch.float64)
    jac = torch.func.jacrev(net)(x)[0]  # (C_out, H, W, 1, C_in, H, W)
    h, w = shape[1:]
    return jac.abs().sum(dim=(0, 3, 4)).reshape(h * w, h * w) != 0


@given(ordering=orderings, h=st.integers(1, 5), w=st.integers(1, 5), k=st.sampled_from([1, 3, 5]),
       d=st.integers(1, 3), mask_type=st.sampled_from("AB"), backend=st.sampled_from(["gather", "patterns"]))
def test_jacobian_follows_the_ordering_and_the_dilation(ordering, h, w, k, d, mask_type, backend):
    net = LMConv(ordering=ordering, kernel_size=k, dilation=d, mask_type=mask_type, backend=backend,
                 in_shape=(2, h, w), out_shape=(2, h, w)).double()
    torch.nn.init.normal_(net.weight)
    assert torch.equal(_dependencies(net, (2, h, w)), _allowed(ordering, h, w, k, d, mask_type))


@given(ordering=orderings, h=st.integers(1, 6), w=st.integers(1, 6), k=st.sampled_from([1, 3, 5]),
       d=st.integers(1, 3), mask_type=st.sampled_from("AB"), bias=st.booleans())
def test_backends_agree(ordering, h, w, k, d, mask_type, bias):
    kwargs = dict(ordering=ordering, kernel_size=k, dilation=d, mask_type=mask_type, bias=bias,
                  in_shape=(3, h, w), out_shape=(2, h, w))
    a = LMConv(backend="gather", **kwargs).double()
    b = LMConv(backend="patterns", **kwargs).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x))


def test_full_mask_is_a_plain_convolution():
    # a type-B mask over a single row in raster order with k=1 is the identity mask
    net = LMConv(kernel_size=1, in_shape=(3, 4, 5), out_shape=(2, 4, 5)).double()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(net(x), torch.nn.functional.conv2d(x, net.weight, net.bias))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no GPU"))])
def test_devices_and_dtypes(device, dtype):
    for backend in ["gather", "patterns"]:
        net = LMConv(ordering="hilbert", backend=backend, in_shape=(2, 4, 4)).to(device, dtype)
        y = net(torch.randn(3, 2, 4, 4, device=device, dtype=dtype))
        assert y.dtype == dtype and y.device.type == device


def test_masks_are_cached_and_not_saved():
    a = LMConv(ordering="s_curve", in_shape=(1, 6, 6))
    b = LMConv(ordering="s_curve", in_shape=(2, 6, 6), out_shape=(4, 6, 6))
    assert a.patterns.data_ptr() == b.patterns.data_ptr()
    assert set(a.state_dict()) == {"weight", "bias"}
    assert lmconv_masks.cache_info().hits >= 1


def test_raster_has_a_single_interior_pattern_so_auto_picks_patterns():
    assert LMConv(in_shape=(1, 8, 8)).backend == "patterns"
    assert LMConv(ordering="hilbert", in_shape=(1, 8, 8)).backend == "gather"
    assert len(lmconv_masks(("raster", False, False, False), 16, 16, 3, 1, "B").patterns) == 1


@given(curve=st.sampled_from(CURVES), h=st.integers(1, 6), w=st.integers(1, 6), variant=st.integers(0, 7))
def test_orderings_are_permutations(curve, h, w, variant):
    o = Ordering(curve=curve, transpose=bool(variant & 1), flip_rows=bool(variant & 2),
                 flip_cols=bool(variant & 4))
    ranks = ordering_ranks(o, h, w)
    assert ranks.shape == (h, w)
    assert torch.equal(ranks.flatten().sort().values, torch.arange(h * w))


@pytest.mark.parametrize(("curve", "h", "w"), [("s_curve", 3, 5), ("hilbert", 8, 8), ("hilbert", 4, 4),
                                               ("s_curve", 4, 1)])
def test_s_curve_and_hilbert_are_contiguous(curve, h, w):
    for variant in range(8):
        o = Ordering(curve=curve, transpose=bool(variant & 1), flip_rows=bool(variant & 2),
                     flip_cols=bool(variant & 4))
        pos = ordering_ranks(o, h, w).flatten().argsort()
        rows, cols = pos // w, pos % w
        steps = (rows.diff().abs() + cols.diff().abs())
        assert torch.all(steps == 1)


def test_eight_variants_are_distinct_and_names_agree():
    variants = {
        tuple(ordering_ranks(Ordering(curve="s_curve", transpose=t, flip_rows=r, flip_cols=c), 4, 4).flatten().tolist())
        for t in (0, 1) for r in (0, 1) for c in (0, 1)
    }
    assert len(variants) == 8
    assert torch.equal(ordering_ranks(Ordering(curve="raster", transpose=True), 3, 4),
                       ordering_ranks(Ordering(curve="column_major"), 3, 4))
    assert Ordering.model_validate("hilbert") == Ordering(curve="hilbert")


def test_errors():
    with pytest.raises(RecipeError, match="kernel_size must be odd"):
        validate_spec({"type": "lmconv", "kernel_size": 2}, "conditioners")
    with pytest.raises(RecipeError, match="curve"):
        validate_spec({"type": "lmconv", "ordering": "zigzag"}, "conditioners")
    with pytest.raises(ShapeError, match="keeps the resolution"):
        LMConv(in_shape=(1, 4, 4), out_shape=(1, 2, 2))

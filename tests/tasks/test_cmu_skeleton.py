"""The CMU skeleton: offset table, Rodrigues, forward kinematics, MPJPE and the axis-angle error."""

import doctest
import math

import numpy as np
import pytest
import torch

from eddies.core import ShapeError
from eddies.tasks import cmu_skeleton
from eddies.tasks.cmu_skeleton import (
    KEPT_JOINTS,
    OFFSETS,
    PARENTS,
    axis_angle_error,
    expmap_to_rotmat,
    forward_kinematics,
    mpjpe,
    rotmat_to_axis_angle,
)

PROTOCOL_PARENTS = [-1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18, 15, 20, 21, 22, 23, 24,
                    25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36]


def random_pose(*batch, scale=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*batch, 38, 3, generator=g, dtype=torch.float64)


def descendants(j):
    out = set()
    for i in range(38):
        k = i
        while k != -1:
            k = PARENTS[k]
            if k == j:
                out.add(i)
                break
    return out


def skew(r):
    x, y, z = r.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*r.shape[:-1], 3, 3)


def test_tables():
    assert list(PARENTS) == PROTOCOL_PARENTS
    assert all(PARENTS[i] < i for i in range(1, 38))
    assert OFFSETS.shape == (38, 3) and OFFSETS.dtype == np.float64 and not OFFSETS.flags.writeable
    assert np.array_equal(OFFSETS[0], [0, 0, 0])
    np.testing.assert_allclose(OFFSETS[3], 70 * np.array([2.59720, -7.13576, 0.0]), rtol=1e-15)
    np.testing.assert_allclose(OFFSETS[37], 70 * np.array([-0.59786, 0.0, 0.59786]), rtol=1e-15)
    assert KEPT_JOINTS == (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 21, 22, 23, 26, 29, 30, 31, 34)


def test_zero_angles_give_cumulative_offsets_and_root_is_ignored():
    expected = np.zeros((38, 3))
    for i in range(38):
        k = i
        while k != -1:
            expected[i] += OFFSETS[k]
            k = PARENTS[k]
    zero = torch.zeros(2, 5, 38, 3, dtype=torch.float64)
    np.testing.assert_allclose(forward_kinematics(zero).numpy(), np.broadcast_to(expected, (2, 5, 38, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(expected[3], 70 * np.array([1.65674 + 2.59720, -1.80282 - 7.13576, 0.62477]))
    root_only = zero.clone()
    root_only[..., 0, :] = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    assert torch.equal(forward_kinematics(root_only), forward_kinematics(zero))
    pose = random_pose(3)
    turned = pose.clone()
    turned[:, 0] = random_pose(3, seed=1)[:, 0]
    assert torch.equal(forward_kinematics(turned), forward_kinematics(pose))


@pytest.mark.parametrize("joint", [2, 15, 21])
def test_rotating_a_joint_moves_exactly_its_descendants_rigidly(joint):
    pose = random_pose(4)
    turned = pose.clone()
    turned[:, joint] += torch.tensor([0.4, -0.7, 0.9], dtype=torch.float64)
    before, after = forward_kinematics(pose), forward_kinematics(turned)
    moved = sorted(descendants(joint))
    others = [i for i in range(38) if i not in moved]
    assert moved and joint in others
    assert torch.allclose(after[:, others], before[:, others], atol=1e-10, rtol=0)
    lever = (before[:, moved] - before[:, joint : joint + 1]).norm(dim=-1)
    shift = (after[:, moved] - before[:, moved]).norm(dim=-1)
    assert bool((shift[lever > 1e-6] > 1e-3).all()) and bool((lever > 1e-6).any())
    part = [joint] + moved
    dist = lambda x: torch.cdist(x[:, part], x[:, part])  # noqa: E731
    assert torch.allclose(dist(after), dist(before), atol=1e-9)


def test_known_exp_maps_give_hand_computed_positions():
    pose = torch.zeros(38, 3, dtype=torch.float64)
    pose[1] = torch.tensor([0.0, 0.0, math.pi / 2])  # R_1 = Rz(90 deg); row vectors: (x, y, z) -> (y, -x, z)
    x = forward_kinematics(pose).numpy()
    p2 = 70 * np.array([-1.80282, -1.65674, 0.62477])
    p3 = p2 + 70 * np.array([-7.13576, -2.59720, 0.0])
    np.testing.assert_allclose(x[1], [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(x[2], p2, atol=1e-9)
    np.testing.assert_allclose(x[3], p3, atol=1e-9)
    rest = forward_kinematics(torch.zeros(38, 3, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(x[7:], rest[7:], atol=1e-12)
    # add R_2 = Rx(90 deg): G_2 = R_2 G_1, so o_3 -> o_3 Rx Rz: (x, y, z) -> (x, z, -y) -> (z, -x, -y)
    pose[2] = torch.tensor([math.pi / 2, 0.0, 0.0])
    x = forward_kinematics(pose).numpy()
    np.testing.assert_allclose(x[2], p2, atol=1e-9)
    np.testing.assert_allclose(x[3], p2 + 70 * np.array([0.0, -2.59720, 7.13576]), atol=1e-9)


def test_rodrigues_is_matrix_exp_of_the_skew_matrix():
    g = torch.Generator().manual_seed(3)
    direction = torch.nn.functional.normalize(torch.randn(40, 3, generator=g, dtype=torch.float64), dim=-1)
    angles = torch.cat([torch.rand(20, generator=g, dtype=torch.float64) * 3 * math.pi,
                        torch.tensor([0.0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 3e-2, math.pi, 2 * math.pi, 10.0],
                                     dtype=torch.float64),
                        torch.full((10,), 1e-5, dtype=torch.float64)])
    r = direction * angles[:, None]
    assert torch.allclose(expmap_to_rotmat(r), torch.linalg.matrix_exp(skew(r)), atol=1e-14, rtol=0)
    assert torch.equal(expmap_to_rotmat(torch.zeros(3, dtype=torch.float64)), torch.eye(3, dtype=torch.float64))
    # the ordinary (column-vector) rotation, not its transpose: Rz(90 deg) maps e_x to e_y
    rz = expmap_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    assert torch.allclose(rz, torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64), atol=1e-15)
    r32 = r.float()
    assert expmap_to_rotmat(r32).dtype == torch.float32
    assert torch.allclose(expmap_to_rotmat(r32).double(), expmap_to_rotmat(r32.double()), atol=1e-6)


def test_rotmat_to_axis_angle_round_trips_near_zero_and_pi():
    g = torch.Generator().manual_seed(4)
    direction = torch.nn.functional.normalize(torch.randn(30, 3, generator=g, dtype=torch.float64), dim=-1)
    angles = torch.cat([torch.rand(18, generator=g, dtype=torch.float64) * math.pi,
                        torch.tensor([0.0, 1e-12, 1e-8, 1e-5, 1e-3, 0.5], dtype=torch.float64),
                        math.pi - torch.tensor([1e-3, 1e-6, 1e-9, 1e-12, 0.0, 0.0], dtype=torch.float64)])
    r = direction * angles[:, None]
    back = rotmat_to_axis_angle(expmap_to_rotmat(r))
    exact_pi = angles == math.pi
    assert torch.allclose(back[~exact_pi], r[~exact_pi], atol=1e-12, rtol=0)
    flip = torch.minimum((back[exact_pi] - r[exact_pi]).norm(dim=-1), (back[exact_pi] + r[exact_pi]).norm(dim=-1))
    assert bool((flip < 1e-7).all())
    # angles beyond pi come back as 2 pi - angle about the opposite axis
    big = rotmat_to_axis_angle(expmap_to_rotmat(torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)))
    assert torch.allclose(big, torch.tensor([4.0 - 2 * math.pi, 0.0, 0.0], dtype=torch.float64), atol=1e-12)
    # and any rotation matrix is reproduced
    rot = torch.linalg.matrix_exp(skew(3 * torch.randn(50, 3, generator=g, dtype=torch.float64)))
    assert torch.allclose(expmap_to_rotmat(rotmat_to_axis_angle(rot)), rot, atol=1e-10)


def test_everything_is_differentiable():
    g = torch.Generator().manual_seed(5)
    r = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(expmap_to_rotmat, (r,))
    assert torch.autograd.gradcheck(expmap_to_rotmat, (zero,))
    assert torch.autograd.gradcheck(lambda x: rotmat_to_axis_angle(expmap_to_rotmat(x)), (r,))
    assert torch.autograd.gradcheck(lambda x: rotmat_to_axis_angle(expmap_to_rotmat(x)), (zero,))
    pose = random_pose(1, seed=6).requires_grad_(True)
    assert torch.autograd.gradcheck(forward_kinematics, (pose,))
    target = random_pose(1, seed=7)
    loss = mpjpe(pose, target).sum() + axis_angle_error(pose, target).sum()
    (grad,) = torch.autograd.grad(loss, pose)
    assert bool(grad.isfinite().all()) and grad[:, 1:].abs().sum() > 0 and grad[:, 0].abs().sum() == 0


def test_mpjpe():
    a = random_pose(3, 2, seed=8)
    assert mpjpe(a, a).shape == (3, 2) and bool((mpjpe(a, a) == 0).all())
    # turning joint 2 by t about z from the rest pose moves joints 3..6 on circles about z through x_2:
    # each by 2 sin(t / 2) times its horizontal (x, y) distance from x_2
    t = 0.5
    turned = torch.zeros(38, 3, dtype=torch.float64)
    turned[2, 2] = t
    chain = np.cumsum(OFFSETS[[3, 4, 5, 6]], axis=0)  # x_k - x_2 at rest for k = 3..6
    expected = 2 * math.sin(t / 2) * np.linalg.norm(chain[:, :2], axis=1).sum() / 38
    got = mpjpe(turned, torch.zeros_like(turned))
    assert got.shape == () and got.item() == pytest.approx(expected, rel=1e-12)
    assert mpjpe(turned.float(), torch.zeros(38, 3)).dtype == torch.float32
    with pytest.raises(ShapeError, match=r"mpjpe.*\(4, 38, 3\).*\(38, 3\)"):
        mpjpe(torch.zeros(4, 38, 3), torch.zeros(38, 3))
    with pytest.raises(ShapeError, match="32, 3"):
        mpjpe(torch.zeros(32, 3), torch.zeros(32, 3))


def test_axis_angle_error_by_hand():
    pred = torch.zeros(2, 38, 3, dtype=torch.float64)
    true = torch.zeros(2, 38, 3, dtype=torch.float64)
    pred[:, 0] = torch.tensor([1.0, 2.0, 3.0])  # the root is ignored
    pred[:, 3] = torch.tensor([0.3, 0.0, 0.0])
    true[:, 3] = torch.tensor([0.1, 0.0, 0.0])  # 0.2
    pred[:, 7] = torch.tensor([0.0, 0.0, 2 * math.pi - 0.5])  # = -0.5 about z
    true[:, 7] = torch.tensor([0.0, 0.0, 0.5])  # 1.0
    pred[:, 10] = torch.tensor([4.0, 0.0, 0.0])  # = 4 - 2 pi about x: 2 pi - 4
    expected = (0.2 + 1.0 + (2 * math.pi - 4)) / 38
    got = axis_angle_error(pred, true)
    assert got.shape == (2,) and torch.allclose(got, torch.full((2,), expected, dtype=torch.float64), atol=1e-12)
    assert axis_angle_error(true, true).abs().max() == 0
    assert pred[0, 0].abs().sum() > 0  # the inputs are not modified


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="forward_kinematics.*int64"):
        forward_kinematics(torch.zeros(38, 3, dtype=torch.int64))
    with pytest.raises(ShapeError, match=r"forward_kinematics.*\(\.\.\., 38, 3\).*\(37, 3\)"):
        forward_kinematics(torch.zeros(37, 3))
    with pytest.raises(ShapeError, match="rotmat_to_axis_angle"):
        rotmat_to_axis_angle(torch.zeros(3))


def test_docstring_examples_run():
    result = doctest.testmod(cmu_skeleton)
    assert result.attempted > 0 and result.failed == 0

"""The 38-joint CMU mocap skeleton: exp maps, forward kinematics, MPJPE and the axis-angle error.

The field's CMU motion-prediction numbers (LearnTrajDep: Mao et al., "Learning Trajectory
Dependencies for Human Motion Prediction", ICCV 2019; MSR-GCN: Dang et al., ICCV 2021) are
position errors of this skeleton. Its definition, :data:`PARENTS` and :data:`OFFSETS`, is
transcribed from ``_some_variables_cmu`` in ``utils/forward_kinematics.py`` of
github.com/wei-mao-2019/LearnTrajDep (commit eebaf34); ``datas/forward_kinematics.py`` of
github.com/Droliven/MSRGCN holds the same numbers. Like there, the offsets are 70 x the
published table, so positions come out in the units the field reports as millimetres.

**Exponential maps.** A joint's 3 values ``r = theta n`` (angle ``theta``, unit axis ``n``) give
the rotation matrix by Rodrigues' formula, ``R = I + sin(theta) K + (1 - cos(theta)) K^2`` with
``K`` the cross-product matrix of ``n``, i.e. ``R = matrix_exp([r]_x)``: the ordinary
(column-vector) rotation about ``n`` by ``theta``, *not* its transpose. This is what the
field's ``expmap2rotmat`` returns (it adds about 1e-7 to ``theta`` before dividing, which moves
the joints of real frames by < 1e-3 mm; here ``theta -> 0`` is handled by series, so ``r = 0``
gives exactly ``I``).

**Forward kinematics** (``fkl_torch`` of the same file), row vectors: with ``R_i`` the local
rotation of joint ``i`` and ``o_i`` its offset, for ``i = 1..37`` with parent ``p``

    G_i = R_i G_p,        x_i = o_i G_p + x_p,

where ``G_0 = I`` and ``x_0 = o_0 = 0``: the root's rotation (values [3:6] of a frame) and
translation (values [0:3]) are ignored. LTD skips the update for the root's children instead
(``if parent[i] > 0``), which is the same thing. Because ``o_i G_p`` multiplies a row vector from
the left, a joint rotation ``R`` moves its subtree by ``R^T`` in column-vector terms; that is the
field's convention and it is kept, so MPJPE values are comparable with published ones.

**Metrics.** :func:`mpjpe` is the mean over the 38 joints of ``||x_hat_i - x_i||_2`` (LTD's
``mpjpe_error_cmu``). :func:`axis_angle_error` is what MotionFlow's code reports as "MPJPE": the
mean over the 38 joints of the Euclidean distance between axis-angle vectors (radians) after
exp map -> rotation matrix -> axis angle (OpenCV's Rodrigues in their code), with the root set
to the identity in both; it is not a position error.

Everything is computed in float64 and returned in the input's dtype; any leading batch axes are
allowed and every function is differentiable::

    >>> import torch
    >>> rest = forward_kinematics(torch.zeros(38, 3, dtype=torch.float64))
    >>> [round(v, 3) for v in rest[3].tolist()]     # 70 x (o_1 + o_2 + o_3)
    [297.776, -625.701, 43.734]
    >>> bent = torch.zeros(2, 38, 3)
    >>> bent[1, 2] = torch.tensor([0.0, 0.0, 0.5])  # turn joint 2 by 0.5 rad about z
    >>> mpjpe(bent, torch.zeros_like(bent)).shape, round(mpjpe(bent[1], bent[0]).item(), 3)
    (torch.Size([2]), 48.663)
    >>> round(axis_angle_error(bent[1], bent[0]).item(), 5)  # 0.5 rad at one of 38 joints
    0.01316
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from eddies.core import ShapeError

NUM_JOINTS = 38

#: Parent of each joint (0-based, -1 for the root), LTD's ``_some_variables_cmu`` list minus 1.
PARENTS: tuple[int, ...] = (
    -1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18,
    15, 20, 21, 22, 23, 24, 25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36,
)

#: The published offset table (x, y, z of each joint relative to its parent), before the x 70.
_PUBLISHED_OFFSETS = np.array(
    [
        [0.00000, 0.00000, 0.00000],  # 0 root
        [0.00000, 0.00000, 0.00000],  # 1
        [1.65674, -1.80282, 0.62477],  # 2
        [2.59720, -7.13576, 0.00000],  # 3
        [2.49236, -6.84770, 0.00000],  # 4
        [0.19704, -0.54136, 2.14581],  # 5
        [0.00000, 0.00000, 1.11249],  # 6
        [0.00000, 0.00000, 0.00000],  # 7
        [-1.61070, -1.80282, 0.62476],  # 8
        [-2.59502, -7.12977, 0.00000],  # 9
        [-2.46780, -6.78024, 0.00000],  # 10
        [-0.23024, -0.63258, 2.13368],  # 11
        [0.00000, 0.00000, 1.11569],  # 12
        [0.00000, 0.00000, 0.00000],  # 13
        [0.01961, 2.05450, -0.14112],  # 14
        [0.01021, 2.06436, -0.05921],  # 15
        [0.00000, 0.00000, 0.00000],  # 16
        [0.00713, 1.56711, 0.14968],  # 17
        [0.03429, 1.56041, -0.10006],  # 18
        [0.01305, 1.62560, -0.05265],  # 19
        [0.00000, 0.00000, 0.00000],  # 20
        [3.54205, 0.90436, -0.17364],  # 21
        [4.86513, 0.00000, 0.00000],  # 22
        [3.35554, 0.00000, 0.00000],  # 23
        [0.00000, 0.00000, 0.00000],  # 24
        [0.66117, 0.00000, 0.00000],  # 25
        [0.53306, 0.00000, 0.00000],  # 26
        [0.00000, 0.00000, 0.00000],  # 27
        [0.54120, 0.00000, 0.54120],  # 28
        [0.00000, 0.00000, 0.00000],  # 29
        [-3.49802, 0.75994, -0.32616],  # 30
        [-5.02649, 0.00000, 0.00000],  # 31
        [-3.36431, 0.00000, 0.00000],  # 32
        [0.00000, 0.00000, 0.00000],  # 33
        [-0.73041, 0.00000, 0.00000],  # 34
        [-0.58887, 0.00000, 0.00000],  # 35
        [0.00000, 0.00000, 0.00000],  # 36
        [-0.59786, 0.00000, 0.59786],  # 37
    ],
    dtype=np.float64,
)

#: Bone offsets (38, 3) float64, 70 x the published table (read-only).
OFFSETS: np.ndarray = 70.0 * _PUBLISHED_OFFSETS
OFFSETS.setflags(write=False)

#: The 24 joints whose exp maps MotionFlow's code models (index 0 = root rotation).
KEPT_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 21, 22, 23, 26, 29, 30, 31, 34)

_SMALL = 1e-8  # below this squared angle the series of sin(t)/t and sin(t/2)/(t/2) are exact in float64


def _floating(x: Tensor, name: str, tail: tuple[int, ...]) -> Tensor:
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if x.dim() < len(tail) or tuple(x.shape[-len(tail):]) != tail:
        raise ShapeError(f"{name}: expected shape (..., {', '.join(map(str, tail))}), got {tuple(x.shape)}")
    return x.to(torch.float64)


def _skew(v: Tensor) -> Tensor:
    """Cross-product matrices [v]_x (..., 3, 3) of vectors v (..., 3): [v]_x u = v x u."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], -2
    )


def expmap_to_rotmat(r: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) of exp maps ``r`` (..., 3) by Rodrigues' formula, ``matrix_exp([r]_x)``.

    Written as ``I + a [r]_x + b [r]_x^2`` with ``a = sin(t)/t``, ``b = (1 - cos(t))/t^2 =
    (sin(t/2)/(t/2))^2 / 2``, ``t = |r|``; both use their series for tiny ``t`` (exact and
    differentiable at ``r = 0``).
    """
    v = _floating(r, "expmap_to_rotmat", (3,))
    t2 = (v * v).sum(-1)
    small = t2 < _SMALL
    t = torch.where(small, torch.ones_like(t2), t2).sqrt()
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)
    half = torch.where(small, 1 - t2 / 24, torch.sin(t / 2) / (t / 2))
    k = _skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    rot = eye + a[..., None, None] * k + (0.5 * half * half)[..., None, None] * (k @ k)
    return rot.to(r.dtype)


def rotmat_to_axis_angle(rot: Tensor) -> Tensor:
    """Axis-angle vectors (..., 3), angle in [0, pi], of rotation matrices ``rot`` (..., 3, 3).

    Inverse of :func:`expmap_to_rotmat` up to the 2 pi ambiguity. Goes through the unit
    quaternion by Shepperd's method (the largest of ``4 q_k^2`` chooses the formula, so nothing is
    divided by a small number, near 0 or near pi), with ``w >= 0``; then ``r = 2 atan2(|v|, w)
    v / |v|``. At an angle of exactly pi the sign of the axis is arbitrary (either is correct).
    """
    m = _floating(rot, "rotmat_to_axis_angle", (3, 3))
    r00, r01, r02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    r10, r11, r12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    r20, r21, r22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    d = torch.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22], -1)
    # Row k is 4 q_k (w, x, y, z); the chosen row has d_k = 4 q_k^2 >= 1, hence norm >= 1.
    rows = torch.stack(
        [
            torch.stack([d[..., 0], r21 - r12, r02 - r20, r10 - r01], -1),
            torch.stack([r21 - r12, d[..., 1], r01 + r10, r02 + r20], -1),
            torch.stack([r02 - r20, r01 + r10, d[..., 2], r12 + r21], -1),
            torch.stack([r10 - r01, r02 + r20, r12 + r21, d[..., 3]], -1),
        ],
        -2,
    )
    best = d.argmax(-1)[..., None, None].expand(*d.shape[:-1], 1, 4)
    q = rows.gather(-2, best).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    n2 = (v * v).sum(-1)
    small = n2 < _SMALL
    n = torch.where(small, torch.ones_like(n2), n2).sqrt()
    # angle / |v| = 2 atan2(n, w) / n, whose series at n -> 0 (w -> 1) is (2 / w)(1 - n^2 / (3 w^2)).
    scale = torch.where(small, 2 / w * (1 - n2 / (3 * w * w)), 2 * torch.atan2(n, w) / n)
    return (scale[..., None] * v).to(rot.dtype)


def forward_kinematics(expmaps: Tensor) -> Tensor:
    """Joint positions (..., 38, 3) of the joints' exp maps (..., 38, 3) (joint 0 = root, ignored).

    ``G_i = R_i G_parent``, ``x_i = o_i G_parent + x_parent`` with row vectors (module docstring).
    """
    v = _floating(expmaps, "forward_kinematics", (NUM_JOINTS, 3))
    local = expmap_to_rotmat(v)
    offsets = torch.tensor(OFFSETS, dtype=torch.float64, device=v.device)
    eye = torch.eye(3, dtype=torch.float64, device=v.device).expand(local.shape[:-3] + (3, 3))
    rotations = [eye]
    positions = [offsets[0].expand(v.shape[:-2] + (3,))]
    for i in range(1, NUM_JOINTS):
        p = PARENTS[i]
        positions.append((offsets[i] @ rotations[p]) + positions[p])
        rotations.append(local[..., i, :, :] @ rotations[p])
    return torch.stack(positions, -2).to(expmaps.dtype)


def _pair(pred: Tensor, true: Tensor, name: str) -> None:
    if pred.shape != true.shape or tuple(pred.shape[-2:]) != (NUM_JOINTS, 3):
        raise ShapeError(
            f"{name}: pred and true must both be (..., {NUM_JOINTS}, 3) exp maps, "
            f"got {tuple(pred.shape)} and {tuple(true.shape)}"
        )


def mpjpe(pred: Tensor, true: Tensor) -> Tensor:
    """Mean per-joint position error (...), mean over the 38 joints of ``||x_hat - x||_2`` after FK
    of the exp maps ``pred`` and ``true`` (..., 38, 3), in the units of :data:`OFFSETS` ("mm")."""
    _pair(pred, true, "mpjpe")
    diff = forward_kinematics(pred.to(torch.float64)) - forward_kinematics(true.to(torch.float64))
    return diff.norm(dim=-1).mean(-1).to(torch.promote_types(pred.dtype, true.dtype))


def axis_angle_error(pred: Tensor, true: Tensor) -> Tensor:
    """MotionFlow's code's error (...), radians: the mean over the 38 joints of ``||a_hat - a||_2``,
    ``a = rotmat_to_axis_angle(expmap_to_rotmat(r))``, the root's exp map set to zero in both."""
    _pair(pred, true, "axis_angle_error")

    def canonical(r: Tensor) -> Tensor:
        r = r.to(torch.float64).clone()
        r[..., 0, :] = 0.0
        return rotmat_to_axis_angle(expmap_to_rotmat(r))

    diff = canonical(pred) - canonical(true)
    return diff.norm(dim=-1).mean(-1).to(torch.promote_types(pred.dtype, true.dtype))

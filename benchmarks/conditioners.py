"""Speed of the conditioners: LMConv against a plain convolution, and MotionFlow's conditioner.

References: Jain, Abbeel & Pathak, "Locally Masked Convolution for Autoregressive Models", UAI
2020, arXiv:2006.12486; Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured
Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt).

Times forward+backward of ``lmconv`` and of ``torch.nn.Conv2d`` of the same shape (default: 64
channels, 32x32, batch 32, kernel 3) for every ordering and backend, interleaving the runs so
that load on a shared machine affects both alike, and prints medians and the ratio (target:
at most 3x). Then times ``motionflow_conditioner`` on MotionFlow's CMU mocap shapes (x is a
3 x 25 x 24 image: coordinates x frames x joints; batch 32, motionflow.txt sec. 5.1)::

    .venv/bin/python benchmarks/conditioners.py [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eddies.conditioners import LMConv, MotionFlowConditioner


def seconds(net: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    net(x)
    return time.perf_counter() - start


def forward_backward(net: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    net(x).sum().backward()
    return time.perf_counter() - start


def race(nets: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median forward+backward seconds of each net, runs interleaved, after one warm-up each."""
    for net in nets.values():
        forward_backward(net, x)
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(repeats):
        for name, net in nets.items():
            times[name].append(forward_backward(net, x))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, c, s, k = args.batch, args.channels, args.size, args.kernel
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, repeats {args.repeats}, "
          "float32, CPU, median forward+backward")
    print(f"\nLMConv vs Conv2d: batch {b}, {c} -> {c} channels, {s}x{s}, kernel {k}")
    x = torch.randn(b, c, s, s, requires_grad=True)
    shape = dict(in_shape=(c, s, s), out_shape=(c, s, s))
    print(f"{'ordering':<14}{'backend':<15}{'patterns':>9}{'conv2d s':>10}{'lmconv s':>10}{'ratio':>7}")
    for curve in ["raster", "column_major", "s_curve", "hilbert"]:
        for backend in ["auto", "gather"]:
            net = LMConv(ordering=curve, kernel_size=k, backend=backend, **shape)
            conv = torch.nn.Conv2d(c, c, k, padding=k // 2)
            t = race({"conv": conv, "lmconv": net}, x, args.repeats)
            label = f"{backend}={net.backend}" if backend == "auto" else backend
            print(f"{curve:<14}{label:<15}{len(net.patterns):>9}{t['conv']:>10.4f}{t['lmconv']:>10.4f}"
                  f"{t['lmconv'] / t['conv']:>7.2f}")

    print(f"\nmotionflow_conditioner (table 1 defaults) on CMU mocap: batch {b}, x (3, 25, 24)")
    cond = MotionFlowConditioner(in_shape=(3, 25, 24))
    x = torch.randn(b, 3, 25, 24, requires_grad=True)
    fb = race({"cond": cond}, x, args.repeats)["cond"]
    with torch.no_grad():
        cond(x)
        forward = statistics.median(seconds(cond, x) for _ in range(args.repeats))
    params = sum(p.numel() for p in cond.parameters())
    print(f"parameters {params}, forward {forward * 1e3:.2f} ms, forward+backward {fb * 1e3:.2f} ms")


if __name__ == "__main__":
    main()

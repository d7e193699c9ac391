"""Benchmark: eddies.flows against normflows, and the log-det cost of invconv1x1 (LU vs slogdet).

Times forward + backward of the negative log-likelihood (standard normal base) for

- Glow, K = 8 steps, L = 3 levels, coupling nets of 128 channels (conv3x3 -> ReLU -> conv1x1 ->
  ReLU -> zero conv3x3, no normalisation inside the nets, sigmoid(h + 2) scales, LU 1x1
  convolutions) on a batch of 64 x 3 x 32 x 32;
- RealNVP on 784-d vectors: 8 affine couplings (half split, MLP 392 -> 512 -> 512 -> 784 giving
  scale and shift, exp scale), each followed by a swap of the halves, batch 256;

built once with eddies and once with normflows (the peer library, installed only for this
benchmark: ``.venv/bin/python -m pip install --no-deps normflows``; skipped with a message if missing).
Differences that remain: normflows' Glow scores each factored-out half by a learned diagonal
Gaussian, eddies' ``split`` by a Gaussian whose mean and scale a zero conv3x3 computes from the
kept half (as in Glow), which costs eddies one more small convolution per level.

Then the log-det of ``invconv1x1`` alone (+ backward) at C = 48, 192, 768: LU (sum of log|s|)
against the plain variant (``slogdet``). Usage::

    .venv/bin/python benchmarks/flows.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch
from _timing import timed

from eddies.core import build

GLOW = {"batch": 64, "shape": (3, 32, 32), "K": 8, "L": 3, "hidden": 128}
REALNVP = {"batch": 256, "dim": 784, "couplings": 8, "hidden": 512}


def nll_step(flow, x):
    def step():
        flow.zero_grad(set_to_none=True)
        z, logdet = flow(x)
        log_p = -0.5 * z.flatten(1).pow(2).sum(1) - 0.5 * z[0].numel() * torch.log(torch.tensor(2 * torch.pi))
        (-(log_p + logdet).mean()).backward()

    return step


def peer_step(model, x):
    def step():
        model.zero_grad(set_to_none=True)
        model.forward_kld(x).backward()

    return step


def eddies_glow():
    net = {"type": "cnn", "channels": [GLOW["hidden"]] * 2, "kernel_sizes": [3, 1, 3], "norm": "none"}
    step = {"type": "glow_step", "coupling": {"type": "affine_coupling", "net": net, "scale": "sigmoid"}}
    spec = {"type": "multiscale", "levels": GLOW["L"], "steps": GLOW["K"], "step": step}
    return build(spec, "flows", shape=GLOW["shape"], context_shape=None)


def eddies_realnvp():
    d = REALNVP["dim"]
    net = {"type": "mlp", "hidden": [REALNVP["hidden"]] * 2, "zero_init_last": True}
    layers = [{"type": "affine_coupling", "net": net, "scale": "exp"}, "reverse"] * REALNVP["couplings"]
    return build({"type": "chain", "layers": layers}, "flows", shape=(d,), context_shape=None)


def normflows_glow(nf):
    (c, h, w), K, L, hidden = GLOW["shape"], GLOW["K"], GLOW["L"], GLOW["hidden"]
    q0, merges, flows = [], [], []
    for i in range(L):
        level = [nf.flows.GlowBlock(c * 2 ** (L + 1 - i), hidden, split_mode="channel", scale=True)
                 for _ in range(K)]
        flows.append([*level, nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (c * 2 ** (L - i), h // 2 ** (L - i), w // 2 ** (L - i))
        else:
            latent = (c * 2 ** (L + 1), h // 2**L, w // 2**L)
        q0.append(nf.distributions.DiagGaussian(latent))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def normflows_realnvp(nf):
    d, hidden = REALNVP["dim"], REALNVP["hidden"]
    flows = []
    for _ in range(REALNVP["couplings"]):
        net = nf.nets.MLP([d // 2, hidden, hidden, d], init_zeros=True)
        flows += [nf.flows.AffineCouplingBlock(net, scale_map="exp"), nf.flows.Permute(d, mode="swap")]
    return nf.NormalizingFlow(nf.distributions.DiagGaussian(d), flows)


def logdet_table(repeats: int) -> None:
    print("\ninvconv1x1 log-det (+ backward), median ms")
    print(f"{'C':>5} {'LU sum log|s|':>14} {'slogdet':>10} {'ratio':>7}")
    for c in (48, 192, 768):
        lu = build("invconv1x1", "flows", shape=(c,), context_shape=None)
        plain = build({"type": "invconv1x1", "lu": False}, "flows", shape=(c,), context_shape=None)

        def lu_step(lu=lu):
            lu.lu.log_s.sum().backward()

        def plain_step(plain=plain):
            torch.linalg.slogdet(plain.weight).logabsdet.backward()

        t_lu, t_plain = timed([lu_step, plain_step], repeats * 5)
        print(f"{c:>5} {t_lu * 1e3:>14.3f} {t_plain * 1e3:>10.3f} {t_plain / t_lu:>6.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, float32, CPU threads {args.threads}, median of {args.repeats} "
          "alternating runs after one warm-up, forward + backward of the NLL")
    try:
        import normflows as nf
    except ImportError:
        nf = None
        print("normflows is not installed: peer column skipped "
              "(install it for the benchmark only: .venv/bin/python -m pip install --no-deps normflows)")
    else:
        print(f"peer library: normflows {getattr(nf, '__version__', '?')}")
    cases = [
        (f"Glow K={GLOW['K']} L={GLOW['L']} hidden={GLOW['hidden']}, {GLOW['batch']}x3x32x32",
         eddies_glow, normflows_glow, torch.randn(GLOW["batch"], *GLOW["shape"])),
        (f"RealNVP {REALNVP['dim']}-d, {REALNVP['couplings']} couplings, hidden {REALNVP['hidden']}, "
         f"batch {REALNVP['batch']}", eddies_realnvp, normflows_realnvp,
         torch.randn(REALNVP["batch"], REALNVP["dim"])),
    ]
    print(f"\n{'configuration':<58} {'eddies s':>9} {'normflows s':>12} {'peer/eddies':>12}")
    for name, ours, peer, x in cases:
        flow = ours()
        with torch.no_grad():
            flow(x)  # actnorm data-dependent initialisation
        if nf is None:
            (t_ours,) = timed([nll_step(flow, x)], args.repeats)
            print(f"{name:<58} {t_ours:>9.3f} {'-':>12} {'-':>12}")
            continue
        model = peer(nf)
        with torch.no_grad():
            model.forward_kld(x)
        t_ours, t_peer = timed([nll_step(flow, x), peer_step(model, x)], args.repeats)
        print(f"{name:<58} {t_ours:>9.3f} {t_peer:>12.3f} {t_peer / t_ours:>11.2f}x")
    logdet_table(args.repeats)


if __name__ == "__main__":
    main()

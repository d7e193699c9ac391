"""Table 3 of frmdn.txt on MNIST: test NLL (logit space, nats) and bits/dim of RMDN and FRMDN.

Reference: Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020,
arXiv:2008.02144 (frmdn.txt).

Trains the recipes ``models`` (default ``rmdn_mnist,frmdn_mnist``; ``frmdn_mnist_app1`` is
FRMDN with application 1's bounded flow) with ``model.prior.rank`` = each of ``ranks`` through
``apps/train.py`` (each run on a fixed budget of ``steps`` optimizer steps of the recipe's batch
of 256, evaluated on the validation split at the end), then scores each run's best checkpoint on
the test split with ``apps/evaluate.py eval.label_marginal=true``: the NLL under the true label,
``-log p(x | y)``, and the label-marginal ``-log (1/10) sum_y p(x | y)`` that MAF's tables (and
so table 3's first rows) report, each with its bits/dim. Prints the configuration and a
Markdown table next to the paper's numbers, and writes both to ``out``/table.json and table.md.

    .venv/bin/python benchmarks/frmdn_table.py steps=1560 jobs=1 threads=2     # the table in docs/frmdn-mnist.md

``jobs`` runs train in parallel (each with ``threads`` torch threads), rank by rank (``ranks``,
default 0,1,2,3, in the order given); every ``key=value`` with a dot is passed on to every
training run as a recipe override.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = {  # frmdn.txt table 3, MNIST column (test NLL, nats)
    ("rmdn", 0): 1209.86, ("rmdn", 1): 1206.11, ("rmdn", 2): 1195.41, ("rmdn", 3): 1189.89,
    ("frmdn", 0): 196.79, ("frmdn", 1): 189.51, ("frmdn", 2): 137.29, ("frmdn", 3): -89.89,
}
MAF = {  # Papamakarios et al. 2017, conditional MNIST, as quoted by frmdn.txt table 3
    "Gaussian": 1344.7, "MADE": 1361.9, "MADE MoG": 1030.3, "RealNVP": 1326.3, "MAF": 1302.9,
    "MAF MoG": 1092.3,
}


def run(args: list[str], log: Path) -> str:
    with log.open("a") as f:
        f.write("$ " + " ".join(args) + "\n")
        f.flush()
        done = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=f, text=True, check=False)
        f.write(done.stdout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode}); see {log}")
    return done.stdout.strip().splitlines()[-1]


def one(recipe: str, rank: int, steps: int, threads: int, out: Path, extra: list[str]) -> dict:
    run_dir = out / f"{recipe}-rank{rank}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "log.txt"
    start = time.perf_counter()
    train = json.loads(run(
        [sys.executable, "apps/train.py", f"recipe={recipe}", f"run_dir={run_dir}",
         f"model.prior.rank={rank}", f"train.max_steps={steps}", f"train.epochs={10**6}",
         f"train.eval_every={steps}", f"train.threads={threads}", "train.early_stopping=null", *extra],
        log))
    seconds = time.perf_counter() - start
    test = json.loads(run(
        [sys.executable, "apps/evaluate.py", f"checkpoint={run_dir / 'checkpoints' / 'best'}", "split=test",
         "eval.label_marginal=true"],
        log))
    return {"recipe": recipe, "rank": rank, "steps": train["step"], "epochs": train["epoch"],
            "val_nll": train["val_nll"], "test_nll": test["nll_logit_nats"],
            "test_bits_per_dim": test["bits_per_dim"], "test_nll_marginal": test["nll_marginal_nats"],
            "test_bits_per_dim_marginal": test["bits_per_dim_marginal"], "train_seconds": seconds}


def table(rows: list[dict]) -> str:
    lines = ["| recipe | d' | our test NLL, true label (nats) | label-marginal | bits/dim (true label, marginal) "
             "| paper's test NLL |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['recipe']}` | {r['rank'] or 'diagonal'} | {r['test_nll']:.1f} | "
                     f"{r['test_nll_marginal']:.1f} | {r['test_bits_per_dim']:.3f}, {r['test_bits_per_dim_marginal']:.3f} | "
                     f"{PAPER[(r['recipe'].split('_')[0], r['rank'])]} |")
    lines += ["", "| MAF's conditional MNIST (quoted by table 3) | test NLL (nats) |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in MAF.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    options = dict(a.split("=", 1) for a in argv if "=" in a and "." not in a.split("=", 1)[0])
    extra = [a for a in argv if "=" in a and "." in a.split("=", 1)[0]]
    steps, jobs = int(options.get("steps", 300)), int(options.get("jobs", 1))
    threads = int(options.get("threads", max(1, (os.cpu_count() or 1) // jobs)))
    ranks = [int(r) for r in options.get("ranks", "0,1,2,3").split(",")]
    models = options.get("models", "rmdn_mnist,frmdn_mnist").split(",")
    out = Path(options.get("out", ROOT / "runs" / "frmdn_table"))
    config = {"steps": steps, "batch_size": 256, "jobs": jobs, "threads": threads, "ranks": ranks,
              "models": models, "overrides": extra, "cpus": os.cpu_count(), "out": str(out)}
    print("configuration:", json.dumps(config), flush=True)
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(one, m, r, steps, threads, out, extra) for r in ranks for m in models]
        rows = []
        for future in futures:
            rows.append(future.result())
            print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda row: (models.index(row["recipe"]), row["rank"]))
    text = table(rows)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps({"configuration": config, "rows": rows}, indent=1) + "\n")
    (out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

"""apps/train.py, evaluate.py and sample.py: end to end, resumption after SIGKILL, clear errors."""

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch

from eddies.core import DataError, get_registry, register
from eddies.engine.cli import evaluate_main, sample_main, train_main
from eddies.tasks.synthetic import SyntheticRegression
from tests.command_line import ENV, ROOT, TINY, app, run_app

FRMDN = ROOT / "tests" / "recipes" / "tiny_frmdn.yaml"


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


# clear errors ------------------------------------------------------------------------------
@pytest.fixture
def trained(tmp_path):
    train_main([f"recipe={TINY}", f"run_dir={tmp_path / 'run'}", "train.epochs=1"])
    return tmp_path / "run"


class MissingTask(SyntheticRegression):
    def prepare(self):
        raise DataError(f"raw source of 'missing' not found under {self.data_dir}; download it first")


@pytest.mark.parametrize("argv, message", [
    (["recipe=no_such_recipe"], r"^error: recipe: unknown recipe 'no_such_recipe'"),
    ([f"recipe={TINY}", "train.epoch=2"], r"^error: train.epoch: unknown key 'epoch'. Did you mean 'epochs'\?"),
    ([f"recipe={TINY}", "train.epochs=zero"], r"^error: train.epochs: Input should be a valid integer, unable to "
     r"parse string as an integer \(from the command-line override train.epochs=zero\)\n$"),
    ([f"recipe={TINY}", "resum=auto"], r"^error: unknown option 'resum'. Did you mean 'resume'\?"),
    (["train.epochs=1"], r"^error: recipe=NAME\|PATH is required"),
    ([f"recipe={TINY}", "model.type=gaussian_regresion"],
     r"^error: model.type: unknown models component 'gaussian_regresion'. Did you mean 'gaussian_regression'"),
])
def test_train_errors_are_one_clear_line(argv, message, monkeypatch, capsys, tmp_path):
    code, _, err = run_app(train_main, [*argv, f"run_dir={tmp_path}"], monkeypatch, capsys)
    assert code == 2
    assert re.search(message, err), err
    assert "Traceback" not in err


def test_a_mistake_in_the_recipe_file_names_the_file_not_the_command_line(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("epochs: 2", "epochs: zero"))
    code, _, err = run_app(train_main, [f"recipe={bad}", "train.batch_size=8", f"run_dir={tmp_path / 'run'}"],
                           monkeypatch, capsys)
    assert code == 2
    assert err == f"error: train.epochs: Input should be a valid integer, unable to parse string as an integer (in {bad})\n"


def test_missing_data_is_a_clear_error(monkeypatch, capsys, tmp_path):
    with get_registry("tasks").scoped():
        register("tasks", "missing", config=get_registry("tasks").get("synthetic_regression").config)(MissingTask)
        code, _, err = run_app(train_main, [f"recipe={TINY}", "task.type=missing", f"run_dir={tmp_path}"],
                               monkeypatch, capsys)
    assert code == 2 and err.startswith("error: raw source of 'missing' not found under") and err.count("\n") == 1


def test_checkpoint_errors_are_clear(trained, monkeypatch, capsys, tmp_path):
    code, _, err = run_app(evaluate_main, [f"checkpoint={tmp_path / 'nowhere'}"], monkeypatch, capsys)
    assert code == 2 and "is not a checkpoint" in err
    ckpt = trained / "checkpoints" / "step-000006"
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    for main, extra in ((evaluate_main, []), (sample_main, ["n=4"])):
        code, _, err = run_app(main, [f"checkpoint={trained}", *extra], monkeypatch, capsys)
        assert code == 2 and f"checkpoint file {weights} is corrupted" in err, err
    code, _, err = run_app(sample_main, [f"checkpoint={trained}", "n=many"], monkeypatch, capsys)
    assert code == 2 and "n='many' is not a valid int" in err
    code, _, err = run_app(evaluate_main, [], monkeypatch, capsys)
    assert code == 2 and "checkpoint=PATH is required" in err


def test_evaluate_overrides_only_eval_options(trained, monkeypatch, capsys):
    code, _, err = run_app(evaluate_main, [f"checkpoint={trained}", "train.epochs=1"], monkeypatch, capsys)
    assert code == 2 and "overrides only the eval options" in err and "train.epochs=1" in err
    code, _, err = run_app(evaluate_main, [f"checkpoint={trained}", "eval.samples=3"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: eval: synthetic_regression.evaluate: unknown options ['samples']")


def test_seed_option_and_resume_without_recipe(trained):
    result = train_main([f"run_dir={trained}", "resume=auto", "train.epochs=2"])  # recipe from the checkpoint
    assert result["step"] == 12
    other = trained.parent / "seeded"
    train_main([f"recipe={TINY}", "seed=11", "name=renamed", f"run_dir={other}", "train.epochs=1"])
    recipe = json.loads((other / "recipe.json").read_text())["recipe"]
    assert recipe["seed"] == 11 and recipe["name"] == "renamed"


def test_error_exit_from_the_real_command_line_has_no_traceback():
    proc = app("train", "recipe=no_such_recipe", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: recipe: unknown recipe") and "Traceback" not in proc.stderr


# end to end --------------------------------------------------------------------------------
@pytest.mark.slow
def test_train_resume_evaluate_sample_through_the_apps(tmp_path):
    run_dir = tmp_path / "run"
    first = last_json(app("train", f"recipe={TINY}", f"run_dir={run_dir}").stdout)
    assert first["step"] == 12
    # continue the same run for one more epoch; the recipe comes from the checkpoint
    more = last_json(app("train", f"run_dir={run_dir}", "resume=auto", "train.epochs=3").stdout)
    assert more["step"] == 18 and more["val_nll"] < first["val_nll"]
    metrics = last_json(app("evaluate", f"checkpoint={run_dir}").stdout)
    assert metrics["checkpoint_step"] == 18 and metrics["split"] == "test"
    assert metrics["oracle_nll"] < metrics["test_nll"] < first["val_nll"] + 1.0
    written = json.loads((run_dir / "checkpoints" / "step-000018" / "metrics-test.json").read_text())
    assert written == metrics
    out = tmp_path / "grid.png"
    app("sample", f"checkpoint={run_dir}", "n=8", f"out={out}")
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.skipif(not FRMDN.is_file(), reason="tests/recipes/tiny_frmdn.yaml (tasks helper) not present")
def test_tiny_frmdn_on_mnist_rows_trains_evaluates_and_samples(tmp_path):
    data = tmp_path / "data"
    result = last_json(app("train", f"recipe={FRMDN}", f"run_dir={tmp_path / 'run'}", f"data_dir={data}",
                           "train.threads=1").stdout)
    assert result["step"] == 8 and math.isfinite(result["val_nll"])
    metrics = last_json(app("evaluate", f"checkpoint={tmp_path / 'run'}", f"data_dir={data}").stdout)
    assert metrics["checkpoint_step"] == 8
    app("sample", f"checkpoint={tmp_path / 'run'}", "n=4", f"data_dir={data}", f"out={tmp_path / 's.png'}")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_sigkill_then_resume_ends_bitwise_like_an_uninterrupted_run(tmp_path):
    """Killed with SIGKILL right after its first checkpoint, resumed with resume=auto."""
    args = [f"recipe={TINY}", "train.epochs=12", "train.checkpoint_every=3",
            "train.scheduler={type: cosine, warmup_steps: 4}", "train.samples=false"]
    whole = app("train", *args, f"run_dir={tmp_path / 'whole'}")
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, str(ROOT / "apps" / "train.py"), *args, f"run_dir={cut}"],
                            env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = cut / "checkpoints" / "latest"
    deadline = time.monotonic() + 120
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert alive, f"the run ended before it could be killed: {proc.stderr.read()}"
    killed_at = json.loads((cut / "checkpoints" / latest.read_text().strip() / "state.json").read_text())["step"]
    assert killed_at < 72
    resumed = app("train", *args, f"run_dir={cut}", "resume=auto")
    assert f"resumed from {cut / 'checkpoints'}" in resumed.stdout
    # every final metric, bit for bit; only the run directory differs
    assert {**last_json(resumed.stdout), "run_dir": None} == {**last_json(whole.stdout), "run_dir": None}
    assert last_json(resumed.stdout)["run_dir"] == str(cut)
    a = safetensors.torch.load_file(tmp_path / "whole" / "checkpoints" / "step-000072" / "model.safetensors")
    b = safetensors.torch.load_file(cut / "checkpoints" / "step-000072" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


# sample.py never overwrites ----------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A trained run shared by the tests below (which leave its checkpoint intact)."""
    run_dir = tmp_path_factory.mktemp("sample") / "run"
    train_main([f"recipe={TINY}", f"run_dir={run_dir}", "train.epochs=1", "train.samples=false"])
    return run_dir


def test_sample_writes_a_new_file_named_after_its_arguments(trained_once, monkeypatch, capsys):
    trained = trained_once
    folder = trained / "checkpoints" / "step-000006"
    paths = []
    for argv in ([], [], ["temperature=0.5"], ["seed=7", "n=4"]):
        code, out, err = run_app(sample_main, [f"checkpoint={trained}", *argv], monkeypatch, capsys)
        assert code == 0, err
        paths.append(Path(out.strip()))
    assert paths == [folder / "samples-16-seed3.png", folder / "samples-16-seed3-2.png",
                     folder / "samples-16-t0.5-seed3.png", folder / "samples-4-seed7.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    first = paths[0].read_bytes()
    assert paths[1].read_bytes() == first  # the same arguments draw the same picture, into a new file
    out = trained / "mine.png"
    code, printed, _ = run_app(sample_main, [f"checkpoint={trained}", f"out={out}"], monkeypatch, capsys)
    assert code == 0 and Path(printed.strip()) == out and out.read_bytes() == first


@pytest.mark.parametrize(("word", "message"), [
    ("temperature=0", "temperature='0': every temperature must be a finite number > 0"),
    ("temperature=hot", "temperature='hot' is not a number or a comma-separated list of numbers"),
    ("n=0", "n=0: need n >= 1"),
])
def test_bad_sample_options_are_one_clear_line(trained_once, word, message, monkeypatch, capsys):
    code, _, err = run_app(sample_main, [f"checkpoint={trained_once}", word], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err


# curves.png --------------------------------------------------------------------------------
def _curves(run_dir, steps, evals, monkeypatch):
    """plot_curves of these records; returns the figure it drew."""
    from eddies.engine import metrics

    log = metrics.MetricsLog(run_dir)
    for record in steps:
        log.append("steps", record)
    for record in evals:
        log.append("evals", record)
    drawn = []
    close = metrics.plt.close
    monkeypatch.setattr(metrics.plt, "close", lambda fig: (drawn.append(fig), close(fig)))
    assert metrics.plot_curves(run_dir).read_bytes()[:4] == b"\x89PNG"
    return drawn[0]


def test_curves_have_y_labels_and_a_loss_range_from_the_first_evaluation(tmp_path, monkeypatch):
    steps = [{"step": s, "loss": 5000.0 / s + 100, "lr": 1e-3} for s in range(1, 41)]
    evals = [{"step": s, "val_loss": 5000.0 / s + 110, "val_nll": 5000.0 / s + 110} for s in (10, 20, 30, 40)]
    fig = _curves(tmp_path, steps, evals, monkeypatch)
    loss, nll, lr = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss (mean per sample)", "val_nll", "learning rate"]
    assert loss.get_title() == "loss (y-range from step 10)"
    low, high = loss.get_ylim()
    kept = [5000.0 / s + 100 for s in range(10, 41)] + [5000.0 / s + 110 for s in (10, 20, 30, 40)]
    margin = 0.05 * (max(kept) - min(kept))
    assert (low, high) == pytest.approx((min(kept) - margin, max(kept) + margin))
    assert high < 5000  # the first steps' losses are off the panel
    assert nll.get_title() == "val_nll" and lr.get_title() == "lr"


def test_loss_range_starts_later_when_the_only_evaluation_is_at_the_end():
    from eddies.engine.metrics import loss_range

    steps = [{"step": s, "loss": 1000.0 if s == 1 else 10.0 - s / 10} for s in range(1, 21)]
    assert loss_range(steps, [{"step": 20, "val_loss": 9.0}]) == pytest.approx((8.0, 9.7, 3))  # from step 3
    assert loss_range(steps[:1], []) is None  # nothing to hide
    assert loss_range([{"step": 1, "loss": float("nan")}], []) is None


def test_train_names_its_run_directory_first_and_prints_the_metrics_last(tmp_path, monkeypatch, capsys):
    code, out, err = run_app(train_main, [f"recipe={TINY}", f"run_dir={tmp_path / 'run'}", "train.epochs=1",
                                          "train.samples=false"], monkeypatch, capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == f"run directory: {tmp_path / 'run'}"
    assert json.loads(lines[-1])["step"] == 6

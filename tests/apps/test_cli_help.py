"""A command line that explains itself: train's --help generated from the schemas, print_config /
--cfg, `components list recipes` and `show`'s table of fields, the run directory in the final
JSON, and the plain progress lines outside a terminal."""

import io
import json
import re
import subprocess
import sys

import pytest
import yaml

from eddies.core import KINDS, get_registry, load_recipe
from eddies.core.recipe import TrainConfig, list_recipes
from eddies.core.spec import describe_config, validate_spec
from eddies.engine.cli import help_text, train_main
from eddies.engine.progress import Progress
from tests.command_line import ENV, ROOT, TINY, run_app

sys.path.insert(0, str(ROOT / "apps"))
import components  # noqa: E402


def row_of(text, key):
    """The table row of ``key`` (its first column) in ``text``."""
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [key])


def test_train_help_lists_every_setting_with_type_and_default_the_recipes_and_the_kinds():
    proc = subprocess.run([sys.executable, str(ROOT / "apps" / "train.py"), "--help"], capture_output=True,
                          text=True, env=ENV, cwd=ROOT, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")
    text = proc.stdout
    assert text.strip() == help_text(train_main)
    for name in TrainConfig.model_fields:
        assert f"\n  {name}" in text, name
    assert row_of(text, "batch_size")[:4] == ["batch_size", "int", ">=", "1"] and row_of(text, "batch_size")[4] == "64"
    assert row_of(text, "log_with")[:4] == ["log_with", "list", "of", "str"] and row_of(text, "log_with")[4] == "[]"
    assert row_of(text, "optimizer")[:4] == ["optimizer", "optimizers", "spec", "{type:"]
    assert row_of(text, "mixed_precision")[1:6] == ["no", "|", "fp16", "|", "bf16"]
    assert row_of(text, "early_stopping.patience")[1:5] == ["int", ">=", "1", "3"]
    names = [name for name, _ in list_recipes(ROOT / "recipes")]
    assert "frmdn_mnist" in names
    for name in names:
        assert re.search(rf"^  {name} +\S", text, re.M), name
    assert f"Component kinds: {', '.join(KINDS)}." in text
    assert "print_config=true" in text and "--cfg" in text


def test_every_row_of_describe_config_shows_the_field_s_real_default():
    rows = {row.key: row for row in describe_config(TrainConfig)}
    defaults = TrainConfig()
    for key, row in rows.items():
        if "." in key or row.default == "null":
            continue
        shown = yaml.safe_load(row.default)
        if row.type.endswith(" spec"):  # shown as written in a recipe: {type: adam}
            shown = validate_spec(shown, row.type.removesuffix(" spec")).to_dict()
        assert shown == defaults.model_dump(mode="json")[key], key


@pytest.mark.parametrize("word", ["print_config=true", "--cfg"])
def test_print_config_prints_the_resolved_recipe_and_trains_nothing(word, tmp_path, monkeypatch, capsys):
    code, out, err = run_app(train_main, [f"recipe={TINY}", "train.epochs=3", word, f"run_dir={tmp_path / 'run'}"],
                             monkeypatch, capsys)
    assert (code, err) == (0, "")
    expected = load_recipe(TINY, ["train.epochs=3"])
    assert yaml.safe_load(out) == expected.to_dict()
    assert "type: adam@1" in out and "lr: 0.05" in out  # defaults filled, versions pinned
    printed = tmp_path / "printed.yaml"
    printed.write_text(out)
    assert load_recipe(printed) == expected  # a recipe file that means the same
    assert not (tmp_path / "run").exists()


def test_print_config_of_a_resumed_run_shows_the_checkpoint_s_recipe_with_the_overrides(tmp_path, monkeypatch,
                                                                                       capsys):
    run_dir = tmp_path / "run"
    train_main([f"recipe={TINY}", f"run_dir={run_dir}", "train.epochs=1", "train.samples=false"])
    code, out, _ = run_app(train_main, [f"run_dir={run_dir}", "resume=auto", "train.epochs=4", "--cfg"],
                           monkeypatch, capsys)
    assert code == 0
    tree = yaml.safe_load(out)
    assert tree["train"]["epochs"] == 4 and tree["name"] == "tiny_synthetic"
    assert len(list((run_dir / "checkpoints").glob("step-*"))) == 1  # nothing trained


def test_the_final_json_names_the_run_directory_and_progress_lines_go_to_stderr(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run_app(train_main, [f"recipe={TINY}", f"run_dir={run_dir}", "train.epochs=1",
                                          "train.samples=false", "train.progress_every=1e-9"], monkeypatch, capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == f"run directory: {run_dir}"
    result = json.loads(lines[-1])
    assert result["run_dir"] == str(run_dir) and result["step"] == 6
    assert json.loads((run_dir / "result.json").read_text()) == {k: v for k, v in result.items() if k != "run_dir"}
    assert any(line.startswith("step 6 epoch 1.00: val_loss=") for line in lines)  # the evaluation, on stdout
    progress = [line for line in err.splitlines() if line.startswith("step ")]
    assert [int(line.split()[1].split("/")[0]) for line in progress] == [1, 2, 3, 4, 5, 6]
    pattern = r"^step \d/6 \(\d+\.\d%\) loss -?\d[\d.e+-]* samples/s \d+ ETA \d+:\d\d:\d\d$"
    assert all(re.match(pattern, line) for line in progress), progress


def test_plain_progress_lines_come_every_n_seconds_with_the_eta_of_the_pace_so_far():
    out, now = io.StringIO(), [100.0]
    progress = Progress(total=110, initial=10, every=30.0, bar=False, file=out, clock=lambda: now[0])
    for step, seconds in ((11, 10.0), (12, 29.0), (13, 30.0), (14, 40.0), (20, 61.0)):
        now[0] = 100.0 + seconds
        progress.update(step, 0.25 if step != 20 else None, 123.4)
    assert out.getvalue().splitlines() == [
        "step 13/110 (11.8%) loss 0.25 samples/s 123 ETA 0:16:10",  # 30 s for 3 steps: 10 s per step, 97 to go
        "step 20/110 (18.2%) loss nan (skipped) samples/s 123 ETA 0:09:09",  # 61 s for 10 steps
    ]
    Progress(10, 0, every=None, bar=False, file=out).update(5, 1.0, 1.0)  # progress_every: null
    Progress(10, 0, every=1e-9, bar=False, enabled=False, file=out).update(5, 1.0, 1.0)  # ranks > 0
    assert len(out.getvalue().splitlines()) == 2


def test_the_trainer_s_lines_are_written_above_the_bar_not_over_it(capsys):
    bar_file = io.StringIO()
    progress = Progress(total=10, initial=0, every=30.0, bar=True, file=bar_file)
    progress.update(3, 0.5, 100.0)
    progress.write("step 3 epoch 0.50: val_loss=1")
    progress.close()
    assert capsys.readouterr().out == "step 3 epoch 0.50: val_loss=1\n"
    assert "3/10" in bar_file.getvalue() and "val_loss" not in bar_file.getvalue()


def test_components_list_recipes_names_each_recipe_with_its_description(capsys):
    assert components.main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    for name, description in list_recipes(ROOT / "recipes"):
        assert re.search(rf"^  {name} +{re.escape(description)}$", out, re.M), name
    assert components.main(["list", "recipe"]) == 2
    assert "Did you mean 'recipes'?" in capsys.readouterr().err


@pytest.mark.parametrize("kind", KINDS)
def test_show_prints_a_table_with_every_field_its_type_and_default(kind, capsys):
    for entry in get_registry(kind).entries():
        assert components.main(["show", f"{kind}/{entry.ref}"]) == 0
        out = capsys.readouterr().out
        head, _, table = out.partition("\n\n")
        assert head == f"{kind}/{entry.ref} ({entry.source}): {entry.summary}"
        rows = describe_config(entry.config)
        if not rows:
            assert table.strip() == "(no settings)"
        for row in rows:
            line = next(line for line in table.splitlines() if line.split()[:1] == [row.key])
            assert row.type in line and f"  {row.default}" in line, (entry.ref, line)
            if (field := entry.config.model_fields.get(row.key)) is not None and field.is_required():
                assert row.default == "required"


def test_show_names_nested_components_by_kind_and_json_is_still_there(capsys):
    assert components.main(["show", "flows/affine_coupling"]) == 0
    net = row_of(capsys.readouterr().out, "net")
    assert net[1:5] == ["conditioners", "spec", "|", "null"]
    assert components.main(["show", "--json", "flows/affine_coupling"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "flows/affine_coupling@1"

"""Hostile recipes, overrides and sweep files: each is one short ``error:`` line and exit status 2.

The table below goes through ``apps/train.py``'s ``train_main`` in this process, as the command
line runs it (``cli.run``); two cases go through the real command lines. The unit tests pin the
recipe functions' bounds (duplicate keys, alias expansion, nesting, UTF-8, numbers, reprs).
"""

from __future__ import annotations

import importlib.util
import re
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from eddies.core import EddiesError, RecipeError, load_recipe
from eddies.core.errors import brief, shorten
from eddies.core.recipe import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    find_recipe,
    load_yaml,
    parse_override,
    parse_yaml,
)
from eddies.core.spec import number_problems
from eddies.engine.cli import train_main
from eddies.engine.sweep import check_space, load_sweep, validate_sweep, with_fixed
from tests.command_line import ROOT, TINY, app, run_app


def laughs(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """A "billion laughs" YAML block: ``width**levels`` strings from a few hundred bytes."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def flow_laughs(levels: int = 9, width: int = 9) -> str:
    """The same as one flow sequence, for an override: ``[&l0 [lol, ...], &l1 [*l0, ...], ...]``."""
    items = [f"&l0 [{', '.join(['lol'] * width)}]"]
    items += [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def recipe_file(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


GOOD = TINY.read_text()
# (id, recipe file text or None for TINY, overrides, the whole expected error line: {file} is the file)
TABLE = [
    ("duplicate key in the file", GOOD.replace("  epochs: 2\n", "  epochs: 2\n  log_every: 1\n  epochs: 5\n"), [],
     r"train.epochs: duplicate key 'epochs' at line 10, column 3 \(first at line 8\); YAML would silently keep "
     r"only the last value \(in {file}\)"),
    ("duplicate top-level key", GOOD + "seed: 4\n", [],
     r"seed: duplicate key 'seed' at line 12, column 1 \(first at line 3\); .* \(in {file}\)"),
    ("duplicate key in an override", None, ["train.optimizer={type: adam, lr: 0.1, lr: 0.2}"],
     r"train.optimizer.lr: duplicate key 'lr' at line 1, column 23 \(first at line 1\); YAML would silently "
     r"keep only the last value \(from the command-line override train.optimizer=\{type: adam, lr: 0.1, lr: 0.2\}\)"),
    ("billion laughs in the file", GOOD + "eval:\n" + laughs(indent="  "), [],
     rf"eval.l4: YAML aliases expand this to more than {MAX_YAML_NODES} values \(a recipe is small plain data; "
     r"is this a \"billion laughs\" document\?\) \(in {file}\)"),
    ("billion laughs in an override", None, [f"eval.x={flow_laughs()}"],
     rf"eval.x.4: YAML aliases expand this to more than {MAX_YAML_NODES} values .*"
     r"\(from the command-line override eval.x=\[&l0 \[lol, lol, .*\.\.\. \(\d+ more characters\)\)"),
    ("recursive alias", GOOD + "eval: {x: &a [1, *a]}\n", [],
     r"eval.x.1: recursive YAML alias: a value cannot contain itself \(in {file}\)"),
    ("nested too deeply", None, ["eval.x=" + "[" * 5000 + "]" * 5000],
     rf"eval.x: invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep at line 1, column {MAX_YAML_DEPTH + 1} "
     r"\(from the command-line override eval.x=\[\[\[.*\.\.\. \(\d+ more characters\)\)"),
    ("not UTF-8", GOOD.encode().replace(b"adam", b"ad\xe4m"), [],
     r"not UTF-8 text: byte 0xe4 at line 9 cannot be decoded; save the file as UTF-8 \(in {file}\)"),
    ("UTF-16", GOOD.encode("utf-16"), [],
     r"not UTF-8 text: byte 0xff at line 1 cannot be decoded; save the file as UTF-8 \(in {file}\)"),
    ("a control character", GOOD.replace("tiny_synthetic", "tiny\x00synthetic"), [],
     r"unacceptable character #x0000 at line 2 \(special characters are not allowed\) \(in {file}\)"),
    ("invalid YAML says line and column", GOOD.replace("batch_size: 16", "batch_size: [16"), [],
     r"invalid YAML: .* at line \d+, column \d+ \(in {file}\)"),
    ("a Python tag", GOOD + "eval: !!python/object/apply:os.system ['echo pwned']\n", [],
     r"YAML tag refused: could not determine a constructor for the tag "
     r"'tag:yaml.org,2002:python/object/apply:os.system'\. .* \(in {file}\)"),
    ("an integer of 5000 digits", GOOD.replace("seed: 3", "seed: " + "7" * 5000), [],
     r"invalid YAML: Exceeds the limit \(4300 digits\) for integer string conversion: value has 5000 digits "
     r"at line 3, column 7 \(in {file}\)"),
    ("lr .inf in the file", GOOD.replace("lr: 0.05", "lr: .inf"), [],
     r"train.optimizer.lr: Input should be a finite number, not inf \(in {file}\)"),
    ("lr=inf as an override string", None, ["train.optimizer.lr=inf"],
     r"train.optimizer.lr: Input should be a finite number, not inf "
     r"\(from the command-line override train.optimizer.lr=inf\)"),
    ("lr=1e999 overflows to inf", None, ["train.optimizer.lr=1.0e+999"],
     r"train.optimizer.lr: Input should be a finite number, not inf \(from the "
     r"command-line override train.optimizer.lr=1.0e\+999\)"),
    ("nan in a task option", None, ["task.noise=.nan"],
     r"task.noise: Input should be a finite number, not nan "
     r"\(from the command-line override task.noise=.nan\)"),
    ("-inf in the eval options", GOOD + "eval: {scale: -.inf}\n", [],
     r"eval.scale: Input should be a finite number, not -inf \(in {file}\)"),
    ("seed too large for torch (option)", None, [f"seed={2**64}"],
     r"seed: integer of 65 bits is out of range: torch takes 64-bit integers, from -2\*\*63 to 2\*\*63 - 1 "
     rf"\(from the command-line override seed={2**64}\)"),
    ("seed too large for torch (file)", GOOD.replace("seed: 3", f"seed: {2**63}"), [],
     r"seed: integer of 64 bits is out of range: torch takes 64-bit integers, from -2\*\*63 to 2\*\*63 - 1 "
     r"\(in {file}\)"),
    ("task seed too large for torch", None, [f"task.seed={-(2**63) - 1}"],
     r"task.seed: integer of 64 bits is out of range: .* \(from the command-line override task.seed=-\d+\)"),
    ("threads too large for torch", None, [f"train.threads={2**31}"],
     rf"train.threads: Input should be less than or equal to 1024 \(from the command-line override "
     rf"train.threads={2**31}\)"),
    ("a huge value is not echoed", None, ["model.x=" + "a" * 100_000],
     r"model.x: unknown key 'x'. Allowed keys: \(none\) \(from the command-line override "
     r"model.x=a{112}\.\.\. \(99888 more characters\)\)"),
    ("a huge key is not echoed", GOOD.replace("  threads: 1", "  " + "k" * 1000 + ": 1"), [],
     r"train.k{194}\.\.\. \(806 more characters\): unknown key 'k{27}\.\.\.k{28}'\. Allowed keys: .* "
     r"\(in {file}\)"),
    ("a huge component name is not echoed", None, ["task.type=" + "z" * 5000],
     r"task.type: tasks component name 'z{27}\.\.\.z{28}' is longer than 100 characters: not a registered "
     r"name; registered tasks: .*synthetic_regression.* \(from the command-line override task.type=z{110}"
     r"\.\.\. \(4890 more characters\)\)"),
    ("a file too large", GOOD + "# " + "x" * 2**18 + "\n", [],
     r"file larger than 262144 bytes; a recipe is a small text file \(in {file}\)"),
    ("not a mapping", "- 1\n- 2\n", [], r"a recipe must be a mapping, got list \(in {file}\)"),
]


@pytest.mark.parametrize("text, overrides, expected", [case[1:] for case in TABLE], ids=[case[0] for case in TABLE])
def test_a_bad_recipe_is_one_error_line_and_exit_status_2(text, overrides, expected, tmp_path, monkeypatch, capsys):
    recipe = TINY if text is None else recipe_file(tmp_path, text)
    code, out, err = run_app(train_main, [f"recipe={recipe}", f"run_dir={tmp_path / 'run'}", *overrides],
                             monkeypatch, capsys)
    assert code == 2, err
    assert re.fullmatch("error: " + expected.replace("{file}", re.escape(str(recipe))) + "\n", err), err
    assert len(err) < 1000 and "Traceback" not in err
    assert not (tmp_path / "run").exists() and out == ""  # refused before anything ran


def test_a_multi_error_report_gives_every_problem_its_full_dotted_path(tmp_path, monkeypatch, capsys):
    text = GOOD.replace("lr: 0.05", "lr: .nan").replace("n_test: 32", "n_test: 32, seed: 99999999999999999999")
    bad = recipe_file(tmp_path, text + "eval: {a: [1, {b: .inf}]}\n")
    code, _, err = run_app(train_main, [f"recipe={bad}", "train.optimizer.eps=-.inf", f"run_dir={tmp_path}"],
                           monkeypatch, capsys)
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"error: task.seed: integer of 67 bits is out of range: torch takes 64-bit integers, " \
                       f"from -2**63 to 2**63 - 1 (in {bad})"
    assert lines[1:] == [
        "further problems:",
        "  train.optimizer.lr: Input should be a finite number, not nan",
        "  train.optimizer.eps: Input should be a finite number, not -inf "
        "(from the command-line override train.optimizer.eps=-.inf)",
        "  eval.a.1.b: Input should be a finite number, not inf",
    ]


def test_billion_laughs_fails_fast_and_in_bounded_memory(tmp_path, monkeypatch, capsys):
    bad = recipe_file(tmp_path, GOOD + "eval:\n" + laughs(levels=12, width=10, indent="  "))  # 10**12 strings
    for argv in ([f"recipe={bad}"], [f"recipe={TINY}", f"eval.x={flow_laughs(levels=12, width=10)}"]):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            code, _, err = run_app(train_main, [*argv, f"run_dir={tmp_path / 'run'}"], monkeypatch, capsys)
            seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert code == 2 and "YAML aliases expand this to more than" in err and err.count("\n") == 1, err
        assert len(err) < 400
        assert seconds < 5, seconds  # about 0.02 s; generous for a loaded machine and tracemalloc
        assert peak < 50 * 2**20, peak  # about 1 MB (200 MB is the requirement)


def test_errors_are_one_line_from_the_real_command_line(tmp_path):
    bad = recipe_file(tmp_path, GOOD.encode().replace(b"adam", b"ad\xe4m"))
    proc = app("train", f"recipe={bad}", f"run_dir={tmp_path}", check=False, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: not UTF-8 text: byte 0xe4 at line 9 cannot be decoded; save the file as UTF-8 " \
                          f"(in {bad})\n"
    sweep = recipe_file(tmp_path, "space:\n  train.optimizer.lr: {type: loguniform, low: 1.0e-4, high: .inf}\n",
                        "sweep.yaml")
    proc = app("tune", f"recipe={TINY}", f"sweep={sweep}", f"run_dir={tmp_path / 'sweep'}",
               "sweep.num_samples=1e999", check=False, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: space[train.optimizer.lr].high: Input should be a finite number, not inf (in " + str(sweep) + ")",
        "further problems:",
        "  num_samples: Input should be a valid integer, unable to parse string as an integer "
        "(from the command-line override sweep.num_samples=1e999)",
    ]
    assert not (tmp_path / "sweep").exists()


def tune_main():
    spec = importlib.util.spec_from_file_location("tune_app", ROOT / "apps" / "tune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("argv, line", [
    (["num_cpus=abc"], "error: num_cpus: num_cpus='abc' is not a valid int"),
    (["num_cpus=" + "9" * 5000], "error: num_cpus: num_cpus='" + "9" * 80 + "... (4920 more characters)' is not "
                                 "a valid int"),
    (["num_cpus=4097"], "error: num_cpus: num_cpus=4097: need num_cpus <= 4096"),
    (["verbose=2"], "error: verbose: verbose=2: need verbose <= 1"),
    (["sweep.space.train.optimizer.lr={type: choice, values: [0.1, .nan]}"],
     "error: space[train.optimizer.lr].values.1: Input should be a finite number, not nan "
     "(from the command-line override sweep.space.train.optimizer.lr={type: choice, values: [0.1, .nan]})"),
    (["sweep.fixed.train.epochs=" + str(2**70)],
     f"error: fixed[train.epochs]: integer of 71 bits is out of range: torch takes 64-bit integers, from -2**63 to "
     f"2**63 - 1 (from the command-line override sweep.fixed.train.epochs={2**70})"),
    (["sweep.space.train.batch_size={type: randint, low: 1, high: 99999999999999999999}"],
     "error: space[train.batch_size].high: integer of 67 bits is out of range: torch takes 64-bit integers, from "
     "-2**63 to 2**63 - 1 (from the command-line override sweep.space.train.batch_size={type: randint, low: 1, "
     "high: 99999999999999999999})"),
    (["sweep.space.train.optimizer.lr={type: uniform, low: -1.0e+308, high: 1.0e+308}"],
     "error: space[train.optimizer.lr]: the range from -1e+308 to 1e+308 is wider than a float can hold "
     "(from the command-line override sweep.space.train.optimizer.lr={type: uniform, low: -1.0e+308, "
     "high: 1.0e+308})"),
    (["sweep.resources.cpu=.inf"], "error: resources.cpu: Input should be a finite number, not inf (from the "
                                   "command-line override sweep.resources.cpu=.inf)"),
    (["sweep.resources.cpu=inf"], "error: resources.cpu: Input should be a finite number (from the command-line "
                                  "override sweep.resources.cpu=inf)"),  # a string: pydantic's own check
])
def test_tune_refuses_bad_bounds_and_options_in_one_line(argv, line, tmp_path, capsys):
    sweep = recipe_file(tmp_path, "space:\n  train.optimizer.lr: {type: choice, values: [0.1]}\n", "sweep.yaml")
    code = tune_main()([f"recipe={TINY}", f"sweep={sweep}", f"run_dir={tmp_path / 'run'}", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err == line + "\n", err
    assert not (tmp_path / "run").exists()


def test_a_sweep_file_is_read_with_the_recipes_bounds(tmp_path):
    for text, path, message in [
        ("space: {train.epochs: {type: choice, values: [1]}}\nnum_samples: 2\nnum_samples: 3\n", "num_samples",
         "duplicate key 'num_samples' at line 3, column 1 (first at line 2)"),
        ("space: {train.epochs: {type: choice, values: [1]}}\ndescription:\n" + laughs(indent="  "),
         "description.l4", f"YAML aliases expand this to more than {MAX_YAML_NODES} values"),
    ]:
        sweep = recipe_file(tmp_path, text, "sweep.yaml")
        with pytest.raises(RecipeError) as err:
            load_sweep(sweep)
        assert (err.value.path, err.value.source) == (path, str(sweep))
        assert err.value.message.startswith(message), err.value


def test_tune_names_a_run_dir_it_cannot_create(tmp_path, capsys):
    sweep = recipe_file(tmp_path, "space:\n  train.optimizer.lr: {type: choice, values: [0.1]}\nmetric: val_nll\n",
                        "sweep.yaml")
    blocker = recipe_file(tmp_path, "", "a_file")
    code = tune_main()([f"recipe={TINY}", f"sweep={sweep}", f"run_dir={blocker / 'run'}"])
    assert code == 2 and capsys.readouterr().err == f"error: {blocker / 'run'}: Not a directory\n"


# unit tests of the recipe functions ---------------------------------------------------------
def test_parse_yaml_refuses_duplicates_but_lets_a_merge_key_be_overridden():
    assert parse_yaml("base: &b {x: 1, y: 2}\nd: {<<: *b, x: 3}") == {"base": {"x": 1, "y": 2}, "d": {"x": 3, "y": 2}}
    assert parse_yaml("a: 1\n'1': 2\n1: 3") == {"a": 1, "1": 2, 1: 3}  # different keys to Python
    with pytest.raises(RecipeError) as err:
        parse_yaml("a:\n  - {b: 1, c: 2}\n  - {b: 1, 'b': 2}\n", "top", "f.yaml")
    assert (err.value.path, err.value.source) == ("top.a.1.b", "f.yaml")
    assert err.value.message == ("duplicate key 'b' at line 3, column 12 (first at line 3); YAML would silently "
                                 "keep only the last value")
    with pytest.raises(RecipeError, match=r"^x: duplicate key 'x' at line 3, column 1 \(first at line 1\)"):
        parse_yaml("x: 1\ny: 2\nx: 3")


def test_alias_expansion_is_bounded_on_the_node_graph():
    shared = parse_yaml(laughs(levels=4, width=9))  # 9**4 strings: allowed, and shared, not copied
    assert len(shared["l3"]) == 9 and shared["l3"][0] is shared["l2"]
    with pytest.raises(RecipeError) as err:
        parse_yaml(laughs(levels=30, width=2))  # 2**30 strings from a 1 kB document
    assert err.value.path == "" and f"more than {MAX_YAML_NODES} values" in err.value.message
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100))
    with pytest.raises(RecipeError, match=rf"nested more than {MAX_YAML_DEPTH} levels deep \(YAML aliases expanded\)"):
        parse_yaml(chain)  # each line shallow, but the aliases nest 100 levels
    assert len(parse_yaml("x: [" + ", ".join(["1"] * (MAX_YAML_NODES - 10)) + "]")["x"]) == MAX_YAML_NODES - 10
    with pytest.raises(RecipeError, match=rf"invalid YAML: more than {MAX_YAML_NODES} values at line 1"):
        parse_yaml("[" + ", ".join(["1"] * MAX_YAML_NODES) + "]")  # stopped while composing


def test_nesting_is_bounded_before_the_quadratic_scanner_and_the_recursive_composer():
    fine = parse_yaml("[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1))
    assert isinstance(fine, list)
    start = time.perf_counter()
    for text in ("[" * 100_000, "{a: " * 100_000, "".join(f"{' ' * i}k:\n" for i in range(200))):
        with pytest.raises(RecipeError, match=f"nested more than {MAX_YAML_DEPTH} levels deep"):
            parse_yaml(text)
    assert time.perf_counter() - start < 5  # PyYAML alone: minutes for the first, RecursionError for the others


def test_load_yaml_names_the_file_for_every_kind_of_unreadable_file(tmp_path):
    cases = {
        b"a: \xff\n": "not UTF-8 text: byte 0xff at line 1 cannot be decoded; save the file as UTF-8",
        b"\xef\xbb\xbfa: 1\n": None,  # UTF-8 with a byte-order mark is fine
        b"": None,
        b"a: [1\n": "invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence) at "
                    "line 2, column 1",
        b"a: 2001-13-45\n": "invalid YAML: month must be in 1..12 at line 1, column 4",
        b"a: 1\n---\nb: 2\n": "invalid YAML: expected a single document in the stream, but found another document "
                              "at line 2, column 1",
        b"a: *nowhere\n": "invalid YAML: found undefined alias 'nowhere' at line 1, column 4",
    }
    for data, message in cases.items():
        path = recipe_file(tmp_path, data)
        if message is None:
            assert load_yaml(path) in ({"a": 1}, {})
            continue
        with pytest.raises(RecipeError) as err:
            load_yaml(path)
        assert (err.value.message, err.value.source) == (message, str(path))
    with pytest.raises(RecipeError, match=rf"^cannot read the file: Is a directory \(in {re.escape(str(tmp_path))}\)$"):
        load_yaml(tmp_path)


def test_a_name_too_long_for_the_file_system_is_a_recipe_error():
    for find, what in ((find_recipe, "recipe"), (load_sweep, "sweep")):
        with pytest.raises(RecipeError) as err:
            find("n" * 5000 + ".yaml")
        assert str(err.value) == f"{what}: cannot look up {what} '{'n' * 27}...{'n' * 23}.yaml': File name too long"


def test_parse_override_uses_the_same_bounds_and_names_the_key():
    assert parse_override("model.x={a: 1, b: [1, 2]}") == ("model.x", {"a": 1, "b": [1, 2]})
    assert parse_override("train.epochs=") == ("train.epochs", None)
    for word, path, message in [
        ("m.x={a: 1, a: 2}", "m.x.a", "duplicate key 'a' at line 1, column 8 (first at line 1)"),
        (f"m.x={flow_laughs()}", "m.x.4", "YAML aliases expand this to more than"),
        ("m.x=[&a [*a]]", "m.x.0.0", "recursive YAML alias"),
        ("m.x=!!python/name:os.system", "m.x", "YAML tag refused"),
    ]:
        with pytest.raises(RecipeError) as err:
            parse_override(word)
        assert err.value.path == path and err.value.message.startswith(message), err.value
    with pytest.raises(RecipeError) as err:
        parse_override("x" * 10_000)
    assert len(str(err.value)) < 200 and "must look like key=value" in str(err.value)


def test_number_problems_walks_the_validated_tree_with_full_paths():
    recipe = load_recipe(TINY)
    assert number_problems(recipe) == []
    tree = {"a": [1.0, {"b": float("nan")}], "c": 2**63 - 1, "d": -(2**63), "e": 2**63, "f": True, "g": "inf"}
    assert [(p.path, p.message.split(":")[0]) for p in number_problems(tree, "top")] == [
        ("top.a.1.b", "Input should be a finite number, not nan"), ("top.e", "integer of 64 bits is out of range")]


def test_recipe_error_text_is_bounded_and_one_line_per_problem():
    err = RecipeError("bad\nvalue " + "v" * 5000, "a." + "k" * 500, "f.yaml", None,
                      [(f"p{i}", f"m{i}", "the command-line override " + "o" * 1000) for i in range(80)])
    lines = str(err).splitlines()
    assert lines[0].startswith("a." + "k" * 198 + "... (302 more characters): bad; value vvv")
    assert lines[0].endswith("... (3011 more characters) (in f.yaml)") and len(lines[0]) < 2400
    assert lines[1] == "further problems:" and len(lines) == 2 + 49 + 1
    assert lines[-1] == "  ... and 31 more problems" and all(len(line) < 400 for line in lines[1:])
    assert err.problems[-1].path == "p79"  # the problems themselves are all kept
    assert shorten("a\nb", 10) == "a\\nb" and brief("x" * 1000) == "'" + "x" * 27 + "..." + "x" * 28 + "'"
    shared = [1]
    for _ in range(40):
        shared = [shared, shared]  # 2**40 leaves if rendered in full
    assert len(brief(shared)) < 200


def test_sweep_bounds_must_be_finite_and_fit_torch():
    space = {"train.optimizer.lr": {"type": "loguniform", "low": 1e-4, "high": float("inf")}}
    with pytest.raises(RecipeError) as err:
        validate_sweep({"space": space, "resources": {"cpu": float("nan")}})
    assert [p.path for p in err.value.problems] == ["space[train.optimizer.lr].high", "resources.cpu"]
    assert [p.message for p in err.value.problems] == ["Input should be a finite number, not inf",
                                                       "Input should be a finite number, not nan"]
    with pytest.raises(RecipeError) as err:
        validate_sweep({"space": {"model.k": {"type": "grid", "values": [1, [2, float("-inf")]]}},
                        "fixed": {"train.optimizer.lr": float("nan"), "seed": 2**64}})
    assert [p.path for p in err.value.problems] == ["space[model.k].values.1.1", "fixed[train.optimizer.lr]",
                                                    "fixed[seed]"]


def test_a_value_that_does_not_fit_keeps_every_recipe_problem_with_its_path(tmp_path):
    tree = load_yaml(TINY)
    sweep = validate_sweep({"name": "s", "space": {"train": {"type": "choice", "values": [
        {"epochs": 0, "batch_size": "x", "optimizer": {"type": "adam", "lr": 0.1}}]}}})
    with pytest.raises(RecipeError) as err:
        check_space(tree, sweep)
    assert err.value.path == "space[train]"
    assert [p.path for p in err.value.problems] == ["space[train]", "train.epochs"]
    assert err.value.message.startswith("choice value {'batch_size': 'x', 'epochs': 0, 'optimizer': {'lr': 0.1, 'type': 'adam'}} "
                                        "does not "
                                        "fit the recipe: train.batch_size: Input should be a valid integer")
    assert str(err.value).count("\n") == 2  # the first problem's line, "further problems:", train.epochs
    path = recipe_file(tmp_path, "space: {train.epochs: {type: choice, values: [1]}}\nfixed: {train.epochs: 0}\n")
    with pytest.raises(RecipeError, match=r"^fixed\[train.epochs\]: value 0 does not fit the recipe: train.epochs: "
                                          r"Input should be greater than or equal to 1 \(from the sweep value "
                                          r"train.epochs=0\) \(in bad\)$"):
        with_fixed(tree, load_sweep(path))


def test_every_refusal_is_an_eddies_error():
    for call in (lambda: parse_yaml("a: [1"), lambda: parse_override("=1"), lambda: load_yaml("/nonexistent.yaml")):
        with pytest.raises(EddiesError):
            call()
    assert issubclass(RecipeError, EddiesError) and yaml.safe_load("a: 1") == {"a": 1}

"""Hostile plug-ins: one overriding a first-party component, one failing (sys.exit, raise) on import.

Each plug-in is a fake installed distribution (a dist-info folder with entry points) on the
PYTHONPATH of a subprocess running the real apps, so discovery goes through importlib.metadata.
"""

import json
import os

import pytest

from tests import command_line
from tests.command_line import TINY, error_lines
from tests.core.test_registry import fake_distribution

IMPOSTOR = """
    from eddies.core import get_registry, register

    original = get_registry("models").get("gaussian_regression@1")
    register("models", "gaussian_regression", version=1, config=original.config,
             summary="Not the linear-Gaussian baseline.", override=True)(original.target)
"""
OVERRIDE_WARNING = ("eddies: impostor-plugin 0.3.0 overrides models/gaussian_regression@1 of eddies-models 0.1.0; "
                    "recipes and checkpoints naming gaussian_regression@1 now get impostor-plugin 0.3.0's component")


def app(name, *args, site=None, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "EDDIES_DISABLE_PLUGINS"}
    full_env.update(TQDM_DISABLE="1", OMP_NUM_THREADS="1", **env)
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    return command_line.app(name, *args, check=False, env=full_env, timeout=300)


@pytest.fixture(scope="module")
def impostor(tmp_path_factory):
    site = tmp_path_factory.mktemp("impostor")
    fake_distribution(site, "impostor-plugin", "impostor_plugin_mod", IMPOSTOR, group="eddies.models")
    return site


def test_an_override_warns_naming_both_distributions_and_the_listing_shows_it(impostor):
    proc = app("components", "list", "models", site=impostor)
    assert proc.returncode == 0, proc.stderr
    assert OVERRIDE_WARNING in proc.stderr
    line = next(row for row in proc.stdout.splitlines() if "gaussian_regression@1" in row)
    assert "impostor-plugin 0.3.0 (overrides eddies-models 0.1.0)" in line
    assert line.rstrip().endswith("Not the linear-Gaussian baseline.")
    assert "conditional_flow@1" in proc.stdout  # the other components are untouched


def test_a_checkpoint_of_the_overridden_component_needs_allow_other_distribution(impostor, tmp_path):
    run_dir = tmp_path / "run"
    trained = app("train", f"recipe={TINY}", f"run_dir={run_dir}", "train.epochs=1", "train.samples=false")
    assert trained.returncode == 0, trained.stderr
    refused = app("evaluate", f"checkpoint={run_dir}", site=impostor)
    assert refused.returncode == 2, refused.stderr
    [message] = error_lines(refused.stderr)
    assert refused.stderr.endswith(message + "\n"), refused.stderr  # the whole error is that one line
    assert "models/gaussian_regression@1 was saved from eddies-models 0.1.0, but is now provided by " \
           "impostor-plugin 0.3.0" in message and "allow_other_distribution=true" in message, message
    assert "Traceback" not in refused.stderr
    allowed = app("evaluate", f"checkpoint={run_dir}", "allow_other_distribution=true", site=impostor)
    assert allowed.returncode == 0, allowed.stderr
    assert OVERRIDE_WARNING in allowed.stderr
    for recipe in ([], [f"recipe={TINY}"]):  # resuming: the recipe from the checkpoint, or given again
        resume = [*recipe, f"run_dir={run_dir}", "resume=auto", "train.epochs=2", "train.samples=false"]
        refused = app("train", *resume, site=impostor)
        assert refused.returncode == 2 and len(error_lines(refused.stderr)) == 1, refused.stderr
        assert "now provided by impostor-plugin 0.3.0" in refused.stderr
    resumed = app("train", *resume, "allow_other_distribution=true", site=impostor)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["step"] == 12


EARLY = """
    from eddies.core import ComponentConfig, register

    class EarlyConfig(ComponentConfig):
        pass

    @register("models", "gaussian_regression", version=1, config=EarlyConfig, summary="Early.", override=True)
    def early(**kwargs):
        raise NotImplementedError
"""


def test_an_override_imported_before_its_kind_is_discovered_still_replaces_the_first_party_entry(tmp_path):
    # imported while the flows are discovered, before eddies-models registered anything
    fake_distribution(tmp_path, "early-plugin", "early_plugin_mod", EARLY, group="eddies.flows")
    proc = app("components", "list", site=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(row for row in proc.stdout.splitlines() if "gaussian_regression@1" in row)
    assert "early-plugin 0.3.0 (overrides eddies-models 0.1.0)" in line and line.endswith("Early.")
    assert "early-plugin 0.3.0 overrides models/gaussian_regression@1 of eddies-models 0.1.0" in proc.stderr


BROKEN = {
    "exit_code": ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    "exit_message": ("import sys\nsys.exit('plug-in says bye')\n", "SystemExit: plug-in says bye"),
    "raises": ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    "raises_a_huge_message": ("raise ValueError('x' * 100_000)\n", "ValueError: " + "x" * 200 + "... (99800 more characters)"),
}
BROKEN_LINE = ("error: plug-in plugin = broken_plugin_mod of distribution broken-plugin (entry point group "
               "eddies.models) failed while being imported: {}. Fix or uninstall broken-plugin, or set "
               "EDDIES_DISABLE_PLUGINS=1")


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_plugin_failing_while_imported_is_one_error_line_naming_it(case, tmp_path):
    source, reason = BROKEN[case]
    fake_distribution(tmp_path, "broken-plugin", "broken_plugin_mod", source, group="eddies.models")
    proc = app("components", "list", site=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", BROKEN_LINE.format(reason) + "\n")


def test_a_plugin_calling_sys_exit_stops_training_with_one_error_line(tmp_path):
    fake_distribution(tmp_path, "broken-plugin", "broken_plugin_mod", "import sys\nsys.exit(0)\n",
                      group="eddies.models")
    proc = app("train", f"recipe={TINY}", f"run_dir={tmp_path / 'run'}", "train.epochs=1", site=tmp_path)
    assert proc.returncode == 2  # not the plug-in's 0: nothing was trained
    assert error_lines(proc.stderr) == [BROKEN_LINE.format("SystemExit: 0")], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    disabled = app("components", "list", "models", site=tmp_path, EDDIES_DISABLE_PLUGINS="1")
    assert disabled.returncode == 0 and "gaussian_regression@1" in disabled.stdout

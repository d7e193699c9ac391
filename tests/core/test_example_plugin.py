"""The worked third-party plug-in (examples/plugin): installed, named by a recipe, removed.

The plug-in is installed with pip into a private target directory (never into the test venv),
and each check runs in a subprocess whose ``PYTHONPATH`` has that directory or not.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(ROOT / "examples" / "plugin")],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _run(code, site=None, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "EDDIES_DISABLE_PLUGINS"}
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        env=full_env, cwd=ROOT, timeout=120,
    )


RECIPE_NAMES_PLUGIN = """
    import torch
    from eddies.core import FLOWS, load_recipe
    recipe = load_recipe("frmdn_mnist", ["model.flow={type: sinh_arcsinh, init_skew: 0.5}"])
    spec = recipe.model.config.flow
    entry = FLOWS.get("sinh_arcsinh")
    layer = spec.build(shape=(3,), context_shape=None)
    x = torch.tensor([[0.0, 1.0, -2.0]], dtype=torch.float64)
    z, _ = layer.double()(x)
    expected = torch.sinh(torch.asinh(x) - 0.5)
    print(spec.name, entry.distribution, entry.distribution_version,
          bool(torch.allclose(z, expected)))
"""


def test_installed_plugin_is_named_by_a_recipe(plugin_site):
    out = _run(RECIPE_NAMES_PLUGIN, plugin_site)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sinh_arcsinh", "eddies-example-plugin", "0.1.0", "True"]


def test_disabled_or_uninstalled_plugin_is_gone(plugin_site):
    for site, env in ((plugin_site, {"EDDIES_DISABLE_PLUGINS": "1"}), (None, {})):
        out = _run(RECIPE_NAMES_PLUGIN, site, **env)
        assert out.returncode != 0
        assert "unknown flows component 'sinh_arcsinh'" in out.stderr
        assert "model.flow.type" in out.stderr


def test_wheel_declares_the_entry_point(plugin_site):
    dist_info = next(plugin_site.glob("eddies_example_plugin-0.1.0.dist-info"))
    text = (dist_info / "entry_points.txt").read_text()
    assert "[eddies.flows]" in text and "eddies_example_plugin" in text


def test_plugin_runs_the_conformance_kit_in_its_own_tests(plugin_site):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", str(ROOT / "examples/plugin/tests")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(plugin_site)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_sinh_arcsinh_conformance" in out.stdout and "PASSED" in out.stdout
    assert "FAILED" not in out.stdout

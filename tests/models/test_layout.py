"""Layout: every model kind lives in eddies-models, the engine registers nothing, and the
dependencies that exist only by component name are declared."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

from eddies.core import get_registry

ROOT = Path(__file__).resolve().parents[2]


def requirements(package: str) -> set[str]:
    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]
    return {dep.split(">")[0].split("[")[0].strip() for dep in project["dependencies"]}


def test_every_model_kind_comes_from_eddies_models():
    entries = get_registry("models").entries()
    assert {"conditional_flow", "sequence_flow", "gaussian_regression"} <= {e.name for e in entries}
    assert {e.distribution for e in entries if e.distribution in {
        "eddies-core", "eddies-flows", "eddies-conditioners", "eddies-priors", "eddies-tasks", "eddies-engine",
        "eddies-models"}} == {"eddies-models"}
    assert get_registry("tasks").get("synthetic_regression").distribution == "eddies-tasks"
    assert importlib.util.find_spec("eddies.core.models") is None
    assert importlib.util.find_spec("eddies.engine.synthetic") is None


def test_registry_discovery_does_not_import_the_engine():
    code = (
        "import sys\n"
        "from eddies.core import get_registry\n"
        "for kind in ('flows', 'conditioners', 'priors', 'models', 'tasks', 'optimizers', 'schedulers'):\n"
        "    get_registry(kind).names()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('accelerate', 'ray', 'matplotlib')\n"
        "             or m.startswith('eddies.engine')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def test_dependencies_by_component_name_are_declared():
    # flows build their default networks (mlp, cnn, cglow_vector) from the conditioners registry;
    # models build standard_normal, lstm and the recipe's flows
    assert "eddies-conditioners" in requirements("flows")
    # euler_state and residual_latent take conditioner specs; their registered examples name mlp
    assert "eddies-conditioners" in requirements("priors")
    # synthetic_regression's scatter plot and the image grids of mnist_rows / weizmann_horse
    assert {"matplotlib", "pillow"} <= requirements("tasks")
    assert {"eddies-core", "eddies-flows", "eddies-conditioners", "eddies-priors"} <= requirements("models")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(dep.startswith("eddies-models") for dep in meta)
    packages = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("PACKAGES"))
    assert "models" in packages.split()
    for package in ("core", "engine"):  # the engine and core register no model kind any more
        entry_points = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"].get(
            "entry-points", {})
        assert "eddies.models" not in entry_points and "eddies.tasks" not in entry_points

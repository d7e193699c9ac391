"""apps/components.py: the listing names every component with its distribution; `show` prints
each component's config as JSON Schema with its defaults; bad arguments exit 2 with a clear line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eddies.core import KINDS, get_registry

APP = Path(__file__).resolve().parents[2] / "apps" / "components.py"
sys.path.insert(0, str(APP.parent))
import components  # noqa: E402


def test_listing_has_every_entry_with_distribution_and_summary():
    text = components.list_components(list(KINDS))
    for kind in KINDS:
        for entry in get_registry(kind).entries():
            line = next(row for row in text.splitlines() if row.split()[:2] == [kind, entry.ref])
            assert f"{entry.distribution} {entry.distribution_version}" in line
            assert line.rstrip().endswith(entry.summary)


@pytest.mark.parametrize("kind", KINDS)
def test_show_prints_a_json_schema_with_defaults_for_every_component(kind):
    for entry in get_registry(kind).entries():
        schema = json.loads(components.show_component(f"{kind}/{entry.ref}"))
        assert schema["title"] == f"{kind}/{entry.ref}"
        assert schema["additionalProperties"] is False
        for name, field in entry.config.model_fields.items():
            if not field.is_required() and field.default_factory is None:
                assert "default" in schema["properties"][name], (entry.ref, name)


def test_show_of_a_nested_spec_field_describes_the_kind():
    schema = json.loads(components.show_component("flows/affine_coupling"))
    nested = [p for p in schema["properties"].values() if "conditioners spec" in json.dumps(p)]
    assert nested, "affine_coupling's network fields should be described as conditioners specs"


def test_bad_arguments_exit_2_with_one_line(capsys):
    assert components.main(["show", "flows/afine_coupling"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown flows component 'afine_coupling'. Did you mean 'affine_coupling'")
    assert components.main(["show", "affine_coupling"]) == 2
    assert "KIND/NAME" in capsys.readouterr().err
    assert components.main(["list", "flow"]) == 2
    assert components.main(["list", "priors"]) == 0
    assert "gmm_lowrank@1" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_on_stdout_and_exits_0(flag):
    proc = subprocess.run([sys.executable, str(APP), flag], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith(components.__doc__.splitlines()[0]) and "show flows/affine_coupling" in proc.stdout


@pytest.mark.parametrize(("argv", "line"), [
    (["lst", "flows"], "error: unknown command 'lst'. Did you mean 'list'? Commands: list, show"),
    (["frobnicate"], "error: unknown command 'frobnicate'. Commands: list, show"),
    (["show"], "error: show takes one KIND/NAME[@N], got 0 argument(s)"),
    (["show", "flows/actnorm", "flows/affine_coupling"], "error: show takes one KIND/NAME[@N], got 2 argument(s)"),
])
def test_a_wrong_command_prints_an_error_line_and_the_usage_and_exits_2(argv, line, capsys):
    assert components.main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    first, _, rest = out.err.partition("\n")
    assert first == line
    assert rest.strip() == components.__doc__.strip()

"""Registry rules: names, versions, duplicates, suggestions, provenance, entry-point discovery."""

import subprocess
import sys
import textwrap

import pytest

from eddies.core import ComponentConfig, get_registry, register
from eddies.core.errors import (
    DuplicateComponentError,
    UnknownComponentError,
    UnknownVersionError,
    did_you_mean,
)
from eddies.core.registry import KINDS, Registry, parse_ref


class WidthConfig(ComponentConfig):
    width: int = 4


@pytest.fixture
def reg():
    """A private registry so these tests never touch the real ones."""
    return Registry("flows")


def test_lookup_latest_and_pinned_versions(reg):
    reg.register("scale", version=1, config=WidthConfig, summary="v1")(lambda **kw: ("v1", kw))
    reg.register("scale", version=3, config=WidthConfig, summary="v3")(lambda **kw: ("v3", kw))
    assert reg.get("scale").version == 3
    assert reg.get("scale@1").summary == "v1"
    assert reg.get("scale@3").ref == "scale@3"
    assert [e.ref for e in reg.entries()] == ["scale@1", "scale@3"]


def test_duplicate_name_and_version_is_an_error_unless_override(reg):
    reg.register("scale", config=WidthConfig)(lambda **kw: 1)
    with pytest.raises(DuplicateComponentError, match=r"scale@1 is already registered.*override=True"):
        reg.register("scale", config=WidthConfig)(lambda **kw: 2)
    reg.register("scale", config=WidthConfig, override=True)(lambda **kw: 3)
    assert reg.get("scale").target() == 3


def test_unknown_name_suggests_close_names_and_lists_the_kind(reg):
    for name in ("actnorm", "affine_coupling", "additive_coupling"):
        reg.register(name)(lambda **kw: None)
    with pytest.raises(UnknownComponentError) as err:
        reg.get("afine_coupling")
    text = str(err.value)
    assert "Did you mean 'affine_coupling'" in text
    assert "Registered flows: actnorm, additive_coupling, affine_coupling" in text
    hint = did_you_mean("afine_coupling", ["actnorm", "additive_coupling", "affine_coupling"])
    assert text == f"unknown flows component 'afine_coupling'.{hint} Registered flows: " \
                   "actnorm, additive_coupling, affine_coupling"  # the one shared hint text
    with pytest.raises(UnknownComponentError) as err:
        reg.get("zzz")
    assert "Did you mean" not in str(err.value)


def test_unknown_version_lists_existing_versions(reg):
    reg.register("scale", version=1)(lambda **kw: None)
    reg.register("scale", version=2)(lambda **kw: None)
    with pytest.raises(UnknownVersionError, match=r"no version 7; registered versions: scale@1, scale@2"):
        reg.get("scale@7")
    with pytest.raises(UnknownVersionError, match="must be an integer"):
        parse_ref("scale@latest")


def test_config_must_forbid_extra_fields(reg):
    from pydantic import BaseModel

    class Loose(BaseModel):
        width: int = 1

    with pytest.raises(TypeError, match="forbid extra fields"):
        reg.register("loose", config=Loose)


def test_bad_names_and_versions_are_refused(reg):
    with pytest.raises(ValueError, match="must match"):
        reg.register("Bad-Name")
    with pytest.raises(ValueError, match="positive int"):
        reg.register("ok", version=0)


def test_scoped_registry_restores_contents():
    flows = get_registry("flows")
    before = set(flows.names())
    with flows.scoped():
        register("flows", "throwaway_for_scope_test")(lambda **kw: None)
        assert "throwaway_for_scope_test" in flows.names()
    assert set(flows.names()) == before


def test_unknown_kind_lists_kinds():
    with pytest.raises(UnknownComponentError, match="kinds are flows, conditioners"):
        get_registry("flow")
    assert set(KINDS) >= {"flows", "conditioners", "priors", "models", "tasks"}


def test_first_party_entries_record_their_distribution():
    entry = get_registry("optimizers").get("adam")
    assert entry.distribution == "eddies-core"
    assert entry.distribution_version == "0.1.0"
    assert entry.provenance()["version"] == 1


# --- entry-point discovery, in subprocesses with a fake installed distribution -------------
def fake_distribution(root, dist, module, source, group="eddies.flows", ep_name="plugin"):
    """Lay out an installed distribution (dist-info with entry points) under ``root``."""
    info = root / f"{dist.replace('-', '_')}-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{ep_name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


def _run(code, path, **env):
    import os

    full_env = {**os.environ, "PYTHONPATH": str(path), **env}
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=full_env, timeout=120,
    )


GOOD = """
    from eddies.core import Bijection, ComponentConfig, register

    @register("flows", "fake_plugin_flow", summary="A plug-in flow.")
    class FakeFlow(Bijection):
        pass
"""


def test_plugin_is_discovered_lazily_with_provenance(tmp_path):
    fake_distribution(tmp_path, "fake-plugin", "fake_plugin_mod", GOOD)
    out = _run(
        """
        import sys
        from eddies.core import FLOWS
        assert "fake_plugin_mod" not in sys.modules  # nothing imported before the first lookup
        e = FLOWS.get("fake_plugin_flow")
        print(e.distribution, e.distribution_version, e.summary)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fake-plugin 0.3.0 A plug-in flow."


def test_disabled_plugins_are_not_loaded_but_first_party_still_is(tmp_path):
    fake_distribution(tmp_path, "fake-plugin", "fake_plugin_mod", GOOD)
    out = _run(
        """
        from eddies.core import FLOWS, OPTIMIZERS
        print("fake_plugin_flow" in FLOWS, "adam" in OPTIMIZERS)
        """,
        tmp_path,
        EDDIES_DISABLE_PLUGINS="1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_broken_plugin_is_an_error_naming_it_and_other_kinds_keep_working(tmp_path):
    fake_distribution(tmp_path, "broken-plugin", "broken_plugin_mod", "raise ImportError('no numpy 0.1')")
    out = _run(
        """
        from eddies.core import OPTIMIZERS, FLOWS
        from eddies.core.errors import PluginError
        for attempt in range(2):  # every lookup of the kind fails, not only the first
            try:
                FLOWS.names()
            except PluginError as err:
                print(err)
        print("adam" in OPTIMIZERS)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    first, second, adam = out.stdout.strip().splitlines()
    assert first == second == (
        "plug-in plugin = broken_plugin_mod of distribution broken-plugin (entry point group eddies.flows) "
        "failed while being imported: ImportError: no numpy 0.1. Fix or uninstall broken-plugin, or set "
        "EDDIES_DISABLE_PLUGINS=1")
    assert adam == "True"


def test_override_of_another_distributions_entry_warns_and_records_it(reg, monkeypatch):
    reg.register("scale", config=WidthConfig, summary="first")(lambda **kw: 1)
    reg.names()  # discovered: an override=True now only registers
    monkeypatch.setattr(reg, "_loading", ("other-plugin", "2.0"))  # as while discovery imports other-plugin
    with pytest.warns(RuntimeWarning, match=r"^eddies: other-plugin 2.0 overrides flows/scale@1 of \(local\); "):
        reg.register("scale", config=WidthConfig, summary="second", override=True)(lambda **kw: 2)
    entry = reg.get("scale@1")
    assert (entry.summary, entry.source, entry.overrides) == ("second", "other-plugin 2.0", "(local)")

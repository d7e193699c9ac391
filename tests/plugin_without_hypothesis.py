"""Runs the kits' pytest plugin in a subprocess in which Hypothesis cannot be imported."""

import subprocess
import sys
import textwrap
from pathlib import Path


def run_plugin_without_hypothesis(tmp_path: Path, test_source: str, option: str) -> str:
    """Run pytest over ``test_source`` (a third party's test module) with the plugin ``option``
    (e.g. ``"--eddies-priors=standard_normal"``), as if Hypothesis were not installed; fail
    unless pytest passes, and return its output."""
    (tmp_path / "test_third_party.py").write_text(textwrap.dedent(test_source))
    code = textwrap.dedent(f"""
        import sys

        class BlockHypothesis:  # as if hypothesis were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "hypothesis":
                    raise ImportError("hypothesis is not installed")

        sys.meta_path.insert(0, BlockHypothesis())
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                              {option!r}, {str(tmp_path)!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout

"""eddies-example-plugin: registers the ``sinh_arcsinh`` flow when eddies discovers plug-ins."""

from eddies_example_plugin.sinh_arcsinh import SinhArcsinh

__all__ = ["SinhArcsinh"]

"""The plug-in's layers pass eddies' conformance kit: one line (after `pip install -e examples/plugin`)."""

from eddies.core.testing import conformance_test

test_sinh_arcsinh_conforms = conformance_test("sinh_arcsinh")

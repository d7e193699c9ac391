"""Every registered flow passes the conformance kit (the kit's pytest plugin parametrises this)."""

import eddies.flows  # noqa: F401 (registers the layers)


def test_registered_flow_conforms(bijection_case):
    bijection_case.check()

"""Every registered conditioner passes the conformance kit (eddies.core.testing.conditioners).

The pytest plugin parametrises ``conditioner_case`` over every registered conditioner's
declared examples: declared output shape, batch independence, shape errors, float32, gradients,
safetensors reload; causality and step API equal to teacher forcing for sequence conditioners;
LMConv's examples declare their ordering, which the kit checks on the Jacobian.
"""

import eddies.conditioners
from eddies.core import CONDITIONERS, SequenceConditioner

PROJECT = [e for e in CONDITIONERS.entries() if e.distribution == "eddies-conditioners"]


def test_registered_conditioner_conforms(conditioner_case):
    conditioner_case.check()


def test_every_project_conditioner_declares_examples():
    assert {e.name for e in PROJECT} >= {
        "mlp", "cnn", "cglow_vector", "cglow_features", "lmconv", "pono", "motionflow_conditioner",
        "lstm", "gru", "motiongru", "predrnn",
    }
    assert not [e.name for e in PROJECT if not e.meta.get("examples")]


def test_the_sequence_conditioners_implement_the_contract():
    sequence = {e.name for e in PROJECT if issubclass(e.target, SequenceConditioner)}
    assert sequence == {"lstm", "gru", "motiongru", "predrnn"}
    assert issubclass(eddies.conditioners.LSTMConditioner, SequenceConditioner)


def test_lmconv_examples_declare_their_ordering():
    assert all("autoregressive" in ex for ex in CONDITIONERS.get("lmconv").meta["examples"])

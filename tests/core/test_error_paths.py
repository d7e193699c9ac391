"""Every problem of a multi-error report keeps its full dotted recipe path, however deep its spec
is nested (a chain's layer's conditioner), whatever found it (the schema, the finite-number check,
an unknown key), and from whichever entry point (a recipe file, overrides, validate_spec with a
path, a Python Spec object in a mapping); the rendered text shows each path in full."""

import math

import pytest

from eddies.core import RecipeError, load_recipe
from eddies.core.recipe import recipe_tree
from eddies.core.spec import validate_spec

DEEP = [  # (override, the full path its problem must carry)
    ("model.flow.layers.0.scale_net.hidden=abc", "model.flow.layers.0.scale_net.hidden"),
    ("model.flow.layers.1.shift_net.activation=relux", "model.flow.layers.1.shift_net.activation"),
    ("model.flow.layers.1.scale_net.hidden=[.nan]", "model.flow.layers.1.scale_net.hidden.0"),
    ("model.prior.head.hiden=3", "model.prior.head.hiden"),
    ("model.conditioner.hidden_size=-1", "model.conditioner.hidden_size"),
    ("train.epochs=zero", "train.epochs"),
]


def rendered_paths(err):
    """The path each line of the message starts with (first line, then the 'further problems')."""
    first, *rest = str(err).splitlines()
    assert rest[0] == "further problems:"
    return [first.split(": ")[0], *(line.strip().split(": ")[0] for line in rest[1:])]


@pytest.mark.parametrize("order", [1, -1])
def test_every_nested_problem_of_a_real_recipe_keeps_its_full_path(order):
    words = [word for word, _ in DEEP][::order]
    with pytest.raises(RecipeError) as err:
        load_recipe("frmdn_mnist", words)
    expected = sorted(path for _, path in DEEP)
    assert sorted(p.path for p in err.value.problems) == expected
    assert sorted(rendered_paths(err.value)) == expected
    for problem in err.value.problems:  # and each is reported as coming from its own override
        word = next(w for w, path in DEEP if path == problem.path)
        assert problem.origin == f"the command-line override {word}"


def test_validate_spec_with_a_path_prefixes_every_problem(monkeypatch):
    model, _ = recipe_tree("frmdn_mnist")
    model = model["model"]
    model["flow"]["layers"][0]["scale_net"]["hidden"] = "abc"
    model["flow"]["layers"][1]["scale_net"]["hidden"] = [math.inf]
    model["prior"]["rank"] = -1
    with pytest.raises(RecipeError) as err:
        validate_spec(model, "models", path="model")
    expected = ["model.flow.layers.0.scale_net.hidden", "model.flow.layers.1.scale_net.hidden.0", "model.prior.rank"]
    assert sorted(p.path for p in err.value.problems) == expected
    assert sorted(rendered_paths(err.value)) == expected


def test_a_python_spec_of_the_wrong_kind_inside_a_mapping_is_named_by_its_full_path():
    tree, _ = recipe_tree("frmdn_mnist")
    mlp = validate_spec({"type": "mlp", "hidden": [8]}, "conditioners")
    tree["model"]["flow"]["layers"][1] = mlp  # a conditioner where a flow layer belongs
    tree["model"]["flow"]["layers"][0]["scale_net"]["hidden"] = "abc"
    with pytest.raises(RecipeError) as err:
        load_recipe(tree)
    assert sorted(p.path for p in err.value.problems) == ["model.flow.layers.0.scale_net.hidden",
                                                          "model.flow.layers.1"]
    assert "model.flow.layers.1: expected a flows spec" in str(err.value)

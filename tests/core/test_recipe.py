"""Specs and recipes: validation paths, suggestions, overrides, safe YAML, building."""

import pytest
import yaml

from eddies.core import ComponentConfig, RecipeError, SpecOf, build, get_registry, register, validate_spec
from eddies.core.errors import did_you_mean
from eddies.core.recipe import (
    apply_overrides,
    find_recipe,
    load_recipe,
    parse_override,
    set_dotted,
    split_cli,
)


class LeafConfig(ComponentConfig):
    hidden: int = 8
    act: str = "relu"


class NodeConfig(ComponentConfig):
    layers: list[SpecOf("flows")] = []
    net: SpecOf("conditioners") = {"type": "test_leaf_net"}
    width: int = 2


@pytest.fixture(autouse=True)
def components():
    """Throwaway components in scoped registries, removed after each test."""
    kinds = ("flows", "conditioners", "models", "tasks")
    scopes = [get_registry(k).scoped() for k in kinds]
    for s in scopes:
        s.__enter__()

    @register("flows", "test_leaf", config=LeafConfig)
    class Leaf:
        def __init__(self, hidden, act, shape):
            self.hidden, self.act, self.shape = hidden, act, shape

    @register("conditioners", "test_leaf_net", config=LeafConfig)
    class LeafNet:
        def __init__(self, hidden, act, in_shape):
            self.hidden, self.in_shape = hidden, in_shape

    @register("flows", "test_node", config=NodeConfig)
    class Node:
        def __init__(self, layers, net, width, shape):
            self.layers = [spec.build(shape=shape) for spec in layers]
            self.net = net.build(in_shape=shape)
            self.width = width

    @register("models", "test_model", config=NodeConfig)
    class Model:
        def __init__(self, layers, net, width, data):
            self.layers = [spec.build(shape=data) for spec in layers]

    @register("tasks", "test_task")
    class Task:
        def __init__(self, data_dir=None):
            pass

    yield
    for s in reversed(scopes):
        s.__exit__(None, None, None)


RECIPE = {
    "task": {"type": "test_task"},
    "model": {"type": "test_model", "layers": [{"type": "test_leaf"}, {"type": "test_leaf"}, {"type": "test_leaf"}]},
    "train": {"batch_size": 16},
}


def test_wrong_type_error_names_the_dotted_path():
    tree = apply_overrides(RECIPE, ["model.layers.2.hidden=abc"])
    with pytest.raises(RecipeError) as err:
        load_recipe(tree)
    assert err.value.path == "model.layers.2.hidden"
    assert str(err.value).startswith("model.layers.2.hidden: Input should be a valid integer")


def test_unknown_component_suggests_the_near_name_with_its_path():
    tree = apply_overrides(RECIPE, ["model.layers.1.type=test_lef"])
    with pytest.raises(RecipeError) as err:
        load_recipe(tree)
    assert err.value.path == "model.layers.1.type"
    assert "Did you mean 'test_leaf'" in str(err.value)


def test_unknown_field_suggests_the_near_field():
    with pytest.raises(RecipeError) as err:
        validate_spec({"type": "test_node", "widht": 3}, "flows", "model.flow")
    assert err.value.path == "model.flow.widht"
    assert "Did you mean 'width'" in str(err.value)


def test_all_problems_are_reported_together():
    tree = apply_overrides(RECIPE, ["model.layers.0.hidden=x", "train.batch_size=0"])
    with pytest.raises(RecipeError) as err:
        load_recipe(tree)
    text = str(err.value)
    assert "model.layers.0.hidden" in text and "train.batch_size" in text


def test_missing_type_lists_registered_components():
    with pytest.raises(RecipeError, match=r"model.layers.0: flows spec has no 'type'.*test_leaf"):
        load_recipe({**RECIPE, "model": {"type": "test_model", "layers": [{"hidden": 3}]}})


def test_overrides_change_the_built_object():
    recipe = load_recipe(RECIPE, ["model.layers.1.hidden=64", "model.layers.1.act=tanh", "model.width=5"])
    model = recipe.model.build(data=(3,))
    assert [layer.hidden for layer in model.layers] == [8, 64, 8]
    assert model.layers[1].act == "tanh"
    assert recipe.model.config.width == 5
    # flow collections parse as YAML
    recipe = load_recipe(RECIPE, ["model.layers=[{type: test_leaf, hidden: 3}]"])
    assert [layer.hidden for layer in recipe.model.build(data=(3,)).layers] == [3]


def test_override_into_absent_sections_uses_schema_defaults():
    recipe = load_recipe({k: v for k, v in RECIPE.items() if k != "train"}, ["train.optimizer.lr=0.5"])
    assert recipe.train.optimizer.config.lr == 0.5
    assert recipe.train.optimizer.name == "adam"
    node = validate_spec({"type": "test_node"}, "flows")
    assert node.config.net.name == "test_leaf_net"


def test_override_of_unknown_key_lists_close_keys():
    with pytest.raises(RecipeError) as err:
        load_recipe(RECIPE, ["model.layres.0.hidden=3"])
    assert err.value.path == "model.layres"
    assert "Did you mean 'layers'" in str(err.value)
    with pytest.raises(RecipeError, match=r"unknown key 'trian'. Did you mean 'train'"):
        load_recipe(RECIPE, ["trian.epochs=3"])
    with pytest.raises(RecipeError, match=r"model.layers.7: index 7 out of range \(list has 3 items\)"):
        load_recipe(RECIPE, ["model.layers.7.hidden=3"])
    with pytest.raises(RecipeError, match="must look like key=value"):
        parse_override("train.epochs")


def test_python_object_yaml_tags_are_refused(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("task: !!python/object/apply:os.system ['echo pwned']\nmodel: {type: test_model}\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(bad)
    assert "YAML tag refused" in str(err.value)
    assert str(bad) in str(err.value)
    with pytest.raises(RecipeError, match="YAML tag refused"):
        load_recipe(RECIPE, ["model.width=!!python/object/apply:os.getcwd []"])


def test_recipe_names_resolve_in_the_recipes_dir(tmp_path):
    (tmp_path / "tiny.yaml").write_text(
        "task: {type: test_task}\nmodel: {type: test_model}\ntrain: {epochs: 2}\n"
    )
    assert find_recipe("tiny", tmp_path) == tmp_path / "tiny.yaml"
    recipe = load_recipe("tiny", ["train.epochs=3"], directory=tmp_path)
    assert recipe.name == "tiny" and recipe.train.epochs == 3
    with pytest.raises(RecipeError, match=r"unknown recipe 'tinny'.*Did you mean 'tiny'"):
        find_recipe("tinny", tmp_path)
    with pytest.raises(RecipeError, match="does not exist"):
        find_recipe(tmp_path / "nope.yaml")


def test_pinned_dump_round_trips():
    recipe = load_recipe(RECIPE)
    dumped = recipe.to_dict()
    assert dumped["model"]["type"] == "test_model@1"
    assert dumped["model"]["layers"][0] == {"type": "test_leaf@1", "hidden": 8, "act": "relu"}
    assert load_recipe(dumped).to_dict() == dumped
    assert [e.ref for e in recipe.model.entries()] == ["test_model@1", "test_leaf@1", "test_leaf@1",
                                                        "test_leaf@1", "test_leaf_net@1"]


def test_build_with_runtime_arguments_and_clash_detection():
    leaf = build({"type": "test_leaf", "hidden": 3}, "flows", shape=(2,))
    assert (leaf.hidden, leaf.shape) == (3, (2,))
    with pytest.raises(TypeError, match="clash"):
        build({"type": "test_leaf"}, "flows", shape=(2,), hidden=4)


def test_split_cli_separates_app_options_from_overrides():
    options, overrides = split_cli(["recipe=frmdn_mnist", "resume=auto", "train.epochs=1"])
    assert options == {"recipe": "frmdn_mnist", "resume": "auto"}
    assert overrides == ["train.epochs=1"]
    with pytest.raises(RecipeError, match="must look like key=value"):
        split_cli(["frmdn_mnist"])


def test_overrides_follow_the_kind_the_schema_declares():
    """A name registered in two kinds: the override walker must use the declared kind's fields."""

    class TwinConfig(ComponentConfig):
        inner: SpecOf("flows") = {"type": "test_leaf"}

    register("flows", "test_twin")(lambda shape: None)  # no fields at all
    register("conditioners", "test_twin", config=TwinConfig)(lambda inner, in_shape: None)
    tree = {**RECIPE, "model": {"type": "test_model", "net": {"type": "test_twin"}}}
    recipe = load_recipe(tree, ["model.net.inner.hidden=5"])  # `inner` is absent: made from its default
    assert recipe.model.config.net.config.inner.config.hidden == 5


def test_did_you_mean_is_one_hint_text():
    assert did_you_mean("trian", ["train", "task", "model"]) == " Did you mean 'train'?"
    assert did_you_mean("layres", ["layers", "layer", "width"], n=2) == " Did you mean 'layers', 'layer'?"
    assert did_you_mean("zzz", ["train"]) == ""
    with pytest.raises(RecipeError) as err:
        load_recipe(RECIPE, ["model.widht.x=3"])
    assert did_you_mean("widht", ["layers", "net", "type", "width"]) in str(err.value)


def test_set_dotted_walks_mappings_and_lists_and_reports_the_resolved_path():
    tree = {"a": {"items": [{"v": 1}, {"v": 2}]}, "n": 3}
    set_dotted(tree, ["a", "items", "-1", "v"], 5)
    assert tree["a"]["items"][1]["v"] == 5
    made = []
    set_dotted(tree, ["b", "c"], 1, fill=lambda node, part, path: made.append(path) or {"d": 0})
    set_dotted(tree, ["a", "items", "-2", "w", "u"], 1, fill=lambda node, part, path: made.append(path) or {})
    assert tree["b"] == {"d": 0, "c": 1} and tree["a"]["items"][0] == {"v": 1, "w": {"u": 1}}
    assert made == [("b",), ("a", "items", "0", "w")]
    set_dotted(tree, ["x", "y", "z"], 2)  # default fill: empty mappings
    assert tree["x"] == {"y": {"z": 2}}
    with pytest.raises(RecipeError, match=r"^a.items.2: index 2 out of range \(list has 2 items\)$"):
        set_dotted(tree, ["a", "items", "2", "v"], 0)
    with pytest.raises(RecipeError, match=r"^a.items.first: 'first' is not a list index"):
        set_dotted(tree, ["a", "items", "first"], 0)
    with pytest.raises(RecipeError, match=r"^n.m: cannot set 'n.m': 'n' holds a int, not a mapping or list$"):
        set_dotted(tree, ["n", "m"], 0)


def test_errors_caused_by_an_override_say_it_came_from_the_command_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "model": {**RECIPE["model"], "width": "wide"}}))
    with pytest.raises(RecipeError) as err:  # while applying
        load_recipe(path, ["trian.epochs=3"])
    assert str(err.value).endswith("(from the command-line override trian.epochs=3)")
    assert str(path) not in str(err.value) and err.value.source == str(path)
    with pytest.raises(RecipeError) as err:  # while validating: the file's problem and the override's
        load_recipe(path, ["train.epochs=abc", "model.layers.-1.hidden=x"])
    assert err.value.path == "model.layers.2.hidden"
    assert err.value.origin == "the command-line override model.layers.-1.hidden=x"
    lines = str(err.value).splitlines()
    assert lines[0].endswith("(from the command-line override model.layers.-1.hidden=x)")
    assert lines[1:] == [
        "further problems:",
        "  model.width: Input should be a valid integer, unable to parse string as an integer",
        "  train.epochs: Input should be a valid integer, unable to parse string as an integer "
        "(from the command-line override train.epochs=abc)",
    ]
    with pytest.raises(RecipeError) as err:  # a problem of the file alone names the file
        load_recipe(path, ["train.epochs=2"])
    assert str(err.value).endswith(f"(in {path})")
    with pytest.raises(RecipeError, match=r"\(from the command-line override train\.epochs\)$"):
        load_recipe(path, ["train.epochs"])
    with pytest.raises(RecipeError) as err:  # a check of a whole section that overrides changed
        load_recipe(path, ["model.width=3", "train.monitor.metric=val_a", "train.early_stopping.metric=val_b"])
    assert err.value.path == "train" and str(err.value).endswith(
        f"(from the command-line override train.monitor.metric=val_a and the command-line override "
        f"train.early_stopping.metric=val_b and {path})")


def test_every_problem_of_a_nested_spec_keeps_its_full_dotted_path():
    tree = {**RECIPE, "model": {"type": "test_model", "width": "x", "net": {"type": "test_leaf_net", "hidden": "a",
                                                                           "act": 3, "widht": 1}}}
    with pytest.raises(RecipeError) as err:
        load_recipe(tree)
    assert [p.path for p in err.value.problems] == ["model.net.hidden", "model.net.act", "model.net.widht",
                                                     "model.width"]
    assert str(err.value).count("further problems") == 1
    assert "  model.net.widht: unknown key 'widht'." in str(err.value)

"""Nested training state (optimizer, scheduler, RNG) as safetensors plus JSON, without pickle.

A state dict such as ``optimizer.state_dict()`` is a tree of dicts, lists and tuples whose leaves
are tensors or JSON scalars. :func:`split_state` walks it once: every tensor goes into a flat
``{key: tensor}`` mapping (saved with safetensors) and is replaced in the tree by
``{"__tensor__": key}``; tuples become ``{"__tuple__": [...]}`` and dicts whose keys are not all
strings (the optimizer's integer parameter ids) become ``{"__items__": [[key, value], ...]}``, so
:func:`join_state` rebuilds exactly the same tree (same key types, same container types,
bit-identical tensors). Anything else (a function, an arbitrary object) is refused with the path
of the offending entry, because it could only be stored with pickle.

Example::

    >>> import torch
    >>> tree = {"state": {0: {"step": torch.tensor(3.0)}}, "groups": [{"betas": (0.9, 0.99)}]}
    >>> skeleton, tensors = split_state(tree, "opt")
    >>> skeleton["state"]["__items__"][0][1]["step"]
    {'__tensor__': 'opt/state/0/step'}
    >>> restored = join_state(skeleton, tensors)
    >>> restored["state"][0]["step"].item(), restored["groups"][0]["betas"]
    (3.0, (0.9, 0.99))
"""

from __future__ import annotations

from typing import Any

import torch

_SCALARS = (str, int, float, bool, type(None))


def split_state(tree: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """Separate the tensors of a nested state from its JSON-ready skeleton."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous().clone()
            return {"__tensor__": path}
        if isinstance(node, _SCALARS):
            return node
        if isinstance(node, tuple):
            return {"__tuple__": [walk(v, f"{path}/{i}") for i, v in enumerate(node)]}
        if isinstance(node, list):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(node)]
        if isinstance(node, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in node):
                return {k: walk(v, f"{path}/{k}") for k, v in node.items()}
            for k in node:
                if not isinstance(k, _SCALARS):
                    raise TypeError(f"state entry {path!r} has a key of type {type(k).__name__}")
            return {"__items__": [[k, walk(v, f"{path}/{k}")] for k, v in node.items()]}
        raise TypeError(
            f"state entry {path!r} holds a {type(node).__name__}, which cannot be stored without "
            "pickle (only tensors, JSON scalars, lists, tuples and dicts are allowed)"
        )

    return walk(tree, prefix), tensors


def join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_state`; a missing tensor is a ``KeyError`` naming its key."""
    if isinstance(skeleton, list):
        return [join_state(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            key = skeleton["__tensor__"]
            if key not in tensors:
                raise KeyError(f"tensor {key!r} is missing from the checkpoint's tensors")
            return tensors[key]
        if set(skeleton) == {"__tuple__"}:
            return tuple(join_state(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__items__"}:
            return {k: join_state(v, tensors) for k, v in skeleton["__items__"]}
        return {k: join_state(v, tensors) for k, v in skeleton.items()}
    return skeleton

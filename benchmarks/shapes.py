"""GPT-2's parameters, defined once (:func:`gpt2_modules`), and the forms the benchmarks take them in, derived
from that list: each module's shapes (:func:`per_module`), every shape in order (:func:`flat`), one player per
block (:func:`block_players`), a nested dict of module subtrees (:func:`nested`) and the dense layers of the
first blocks (:func:`dense_layers`).

Kept free of other imports: ``benchmarks/cupy_step.py`` runs as a script and imports it from its own folder.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

Shape = tuple[int, ...]


class Module(NamedTuple):
    """One module: its dotted ``path`` (``h0.attn.c_attn``), the index of the transformer block it is in
    (``None`` for the embeddings and the final norm) and its parameters' shapes by Flax's names, in order."""

    path: str
    block: int | None
    params: dict[str, Shape]


def gpt2_modules(layers=12, width=768, vocab=50257, context=1024) -> list[Module]:
    """GPT-2's modules in order: ``wte``, ``wpe``, six per block, ``ln_f`` (the LM head is tied to ``wte``). The
    defaults are GPT-2 small's: 75 modules, 148 tensors, 124.4M parameters."""

    def dense(n_in, n_out):
        return {"kernel": (n_in, n_out), "bias": (n_out,)}

    def norm():
        return {"scale": (width,), "bias": (width,)}

    block = {
        "ln_1": norm(),
        "attn.c_attn": dense(width, 3 * width),
        "attn.c_proj": dense(width, width),
        "ln_2": norm(),
        "mlp.c_fc": dense(width, 4 * width),
        "mlp.c_proj": dense(4 * width, width),
    }
    embeddings = [
        Module("wte", None, {"embedding": (vocab, width)}),
        Module("wpe", None, {"embedding": (context, width)}),
    ]
    blocks = [Module(f"h{i}.{name}", i, dict(params)) for i in range(layers) for name, params in block.items()]
    return [*embeddings, *blocks, Module("ln_f", None, norm())]


def per_module(modules) -> list[tuple[str, list[Shape]]]:
    """``(path, [shapes])`` of each module (one player per module, as ``neat.torch.NGAdam(model)`` has them)."""
    return [(module.path, list(module.params.values())) for module in modules]


def flat(modules) -> list[Shape]:
    """Every parameter's shape, in order."""
    return [shape for module in modules for shape in module.params.values()]


def block_players(modules) -> list[list[int]]:
    """One player per block: the indices (in :func:`flat`'s order) of each run of consecutive modules of one block,
    that is the embeddings, each transformer block and the final norm."""
    players, start = [], 0
    for _, run in itertools.groupby(modules, key=lambda module: module.block):
        count = sum(len(module.params) for module in run)
        players.append(list(range(start, start + count)))
        start += count
    return players


def nested(modules) -> dict:
    """The shapes as a nested dict of module subtrees, Flax-style (``tree["h0"]["attn"]["c_attn"]["kernel"]``):
    NEAT's default optax players are these subtrees."""
    tree: dict = {}
    for module in modules:
        node = tree
        for key in module.path.split("."):
            node = node.setdefault(key, {})
        node.update(module.params)
    return tree


def dense_layers(modules, blocks=4) -> list[Module]:
    """The dense layers (attention and MLP weights and biases) of the first ``blocks`` transformer blocks; of
    GPT-2 small's, 32 tensors and 28.3M parameters."""
    return [m for m in modules if m.block is not None and m.block < blocks and "kernel" in m.params]

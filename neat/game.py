"""The player-level math of one step (SPEC steps 3–7), on small per-player vectors.

Pure functions of array-API arrays and :class:`neat.topology.GameTables`; no Python
branching on values, so they trace under ``jax.jit`` and ``torch.compile``. Their
cost is linear in tensors and players (gathers over padded index tables).
"""

from __future__ import annotations


def _gather(xp, values, indices, mask):
    """``values[indices]`` for a padded ``(rows, width)`` index table, 0 in the padding."""
    taken = xp.reshape(xp.take(values, xp.reshape(indices, (-1,))), indices.shape)
    return xp.where(mask, taken, xp.zeros_like(taken))


def player_sums(xp, tables, per_tensor):
    """``Σ_{k∈i} x_k`` for every player ``i`` (SPEC step 3): ``(K,) → (n,)``, in tensor order."""
    return xp.sum(_gather(xp, per_tensor, tables.members, tables.member_mask), axis=1)


def per_tensor(xp, tables, per_player):
    """Spread a per-player value to its tensors, ``x_{P(k)}``: ``(n,) → (K,)``."""
    return xp.take(per_player, tables.owner)


def smooth(xp, tables, x):
    """``S x``: a weighted average of ``x`` over coupled players (SPEC steps 5, 7)."""
    return xp.sum(tables.weights * _gather(xp, x, tables.neighbours, tables.weights > 0), axis=1)


def alignment(xp, grad_sq, cross, dir_sq):
    """``a_i = C_i / (√G_i √U_i)`` clipped to ``[−1, 1]``; 0 where ``√G_i √U_i = 0`` (SPEC step 4)."""
    norms = xp.sqrt(grad_sq) * xp.sqrt(dir_sq)
    defined = norms > 0
    ratio = cross / xp.where(defined, norms, xp.ones_like(norms))
    return xp.where(defined, xp.clip(ratio, -1.0, 1.0), xp.zeros_like(cross))


def shared_conflict(xp, tables, align):
    """``κ = S r`` with ``r_i = max(0, −a_i)`` (SPEC step 5)."""
    return smooth(xp, tables, xp.maximum(-align, xp.zeros_like(align)))


def nge_coefficient(xp, gamma, conflict, cross, dir_sq):
    """``γ κ_i C_i / U_i`` where ``C_i < 0`` and ``U_i > 0``, else 0 (SPEC step 6).

    NGE then reads ``ĝ_k = g_k − coefficient_{P(k)} · u_k``.
    """
    active = (cross < 0) & (dir_sq > 0)
    safe_dir_sq = xp.where(active, dir_sq, xp.ones_like(dir_sq))
    return xp.where(active, gamma * conflict * (cross / safe_dir_sq), xp.zeros_like(cross))


def nsa_log_step(xp, tables, log_step, align, first_step, *, zeta, leak, log_bounds):
    """``z ← clip(S((1 − ρ) z + ζ a), log λmin, log λmax)``; unchanged at ``t = 1`` (SPEC step 7)."""
    moved = smooth(xp, tables, (1.0 - leak) * log_step + zeta * align)
    moved = xp.clip(moved, log_bounds[0], log_bounds[1])
    return xp.where(first_step, log_step, moved)

"""The player-level math of one step (SPEC steps 3–7), on small per-player vectors.

Pure functions of array-API arrays and :class:`neat.topology.GameTables`; no Python
branching on values, so they trace under ``jax.jit`` and ``torch.compile``. Their
cost is linear in tensors and players (gathers over padded index tables).
"""

from __future__ import annotations


def player_sums(xp, tables, per_tensor):
    """``Σ_{k∈i} x_k`` for every player ``i`` (SPEC step 3): ``(K, c) → (c, n)``, in tensor order.

    The padding of the member table is multiplied by 0: it can only carry a non-finite value
    when some ``G_i`` is non-finite, and then the step is skipped (SPEC step 0)."""
    return _gathered_sum(xp, xp.permute_dims(per_tensor, (1, 0)), tables.members, tables.member_mask)


def per_tensor(xp, tables, per_player):
    """Spread per-player values to their tensors, ``x_{P(k)}``: ``(c, n) → (c, K)``."""
    return xp.take(per_player, tables.owner, axis=1)


def smooth(xp, tables, x):
    """``S x`` for the rows of ``x``, ``(c, n) → (c, n)``: weighted averages over coupled players
    (SPEC steps 5, 7), from the gather table of ``S``'s non-negligible entries."""
    return _gathered_sum(xp, x, tables.neighbours, tables.weights)


def _gathered_sum(xp, x, indices, weights):
    """``y[c, i] = Σ_j weights[i, j] · x[c, indices[i, j]]`` (contiguous reductions over ``j``)."""
    rows, width = indices.shape
    taken = xp.reshape(xp.take(x, xp.reshape(indices, (-1,)), axis=1), (x.shape[0], rows, width))
    return xp.sum(taken * weights, axis=2)


def alignment(xp, grad_sq, cross, dir_sq):
    """``a_i = C_i / (√G_i √U_i)`` clipped to ``[−1, 1]``; 0 where ``√G_i √U_i = 0`` (SPEC step 4)."""
    norms = xp.sqrt(grad_sq) * xp.sqrt(dir_sq)
    defined = norms > 0
    ratio = cross / xp.where(defined, norms, 1.0)
    return xp.where(defined, xp.minimum(xp.maximum(ratio, -1.0), 1.0), 0.0)


def conflict_and_log_step(xp, tables, align, log_step, first_step, *, zeta, leak, log_bounds):
    """Shared conflict ``κ = S r`` with ``r_i = max(0, −a_i)`` (SPEC step 5) and the NSA log-step
    ``z ← clip(S((1 − ρ) z + ζ a), log λmin, log λmax)``, unchanged at ``t = 1`` (SPEC step 7):
    both smoothings in one pass over ``S``."""
    smoothed = smooth(xp, tables, xp.stack([xp.maximum(-align, 0.0), (1.0 - leak) * log_step + zeta * align]))
    moved = xp.minimum(xp.maximum(smoothed[1, :], log_bounds[0]), log_bounds[1])
    return smoothed[0, :], xp.where(first_step, log_step, moved)


def nge_coefficient(xp, gamma, conflict, cross, dir_sq):
    """``γ κ_i C_i / U_i`` where ``C_i < 0`` and ``U_i > 0``, else 0 (SPEC step 6).

    NGE then reads ``ĝ_k = g_k − coefficient_{P(k)} · u_k``.
    """
    active = (cross < 0) & (dir_sq > 0)
    safe_dir_sq = xp.where(active, dir_sq, 1.0)
    return xp.where(active, gamma * conflict * (cross / safe_dir_sq), 0.0)

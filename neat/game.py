"""The player-level math of one step (SPEC.md steps 3–7), on small per-player vectors.

Pure functions of array-API arrays; no Python branching on values, so they
trace under ``jax.jit`` and ``torch.compile``.
"""

from __future__ import annotations


def player_sums(xp, membership, per_tensor):
    """``Σ_{k∈i} x_k`` for every player ``i`` (SPEC step 3): ``(K,) → (n,)``.

    An exact masked sum rather than a matmul, so no backend lowers it to TF32/bf16.
    """
    return xp.sum(membership * per_tensor[:, None], axis=0)


def per_tensor(xp, membership, per_player):
    """Spread a per-player value to its tensors, ``x_{P(k)}``: ``(n,) → (K,)``."""
    return xp.sum(membership * per_player[None, :], axis=1)


def smooth(xp, smoothing, x):
    """``S x``: a weighted average of ``x`` over coupled players (SPEC step 5, 7)."""
    return xp.sum(smoothing * x[None, :], axis=1)


def alignment(xp, grad_sq, cross, dir_sq):
    """``a_i = C_i / (√G_i √U_i)`` clipped to ``[−1, 1]``; 0 where ``G_i U_i = 0`` (SPEC step 4)."""
    defined = grad_sq * dir_sq > 0
    denominator = xp.where(defined, xp.sqrt(grad_sq) * xp.sqrt(dir_sq), xp.ones_like(grad_sq))
    return xp.where(defined, xp.clip(cross / denominator, -1.0, 1.0), xp.zeros_like(cross))


def shared_conflict(xp, smoothing, align):
    """``κ = S r`` with ``r_i = max(0, −a_i)`` (SPEC step 5)."""
    return smooth(xp, smoothing, xp.maximum(-align, xp.zeros_like(align)))


def nge_coefficient(xp, gamma, conflict, cross, dir_sq):
    """``γ κ_i C_i / U_i`` where ``C_i < 0`` and ``U_i > 0``, else 0 (SPEC step 6).

    NGE then reads ``ĝ_k = g_k − coefficient_{P(k)} · u_k``.
    """
    active = (cross < 0) & (dir_sq > 0)
    safe_dir_sq = xp.where(active, dir_sq, xp.ones_like(dir_sq))
    return xp.where(active, gamma * conflict * (cross / safe_dir_sq), xp.zeros_like(cross))


def nsa_log_step(xp, smoothing, log_step, align, count, *, zeta, leak, log_bounds):
    """``z ← clip(S((1 − ρ) z + ζ a), log λmin, log λmax)``; unchanged at ``t = 1`` (SPEC step 7)."""
    moved = smooth(xp, smoothing, (1.0 - leak) * log_step + zeta * align)
    moved = xp.clip(moved, log_bounds[0], log_bounds[1])
    return xp.where(count > 1, moved, log_step)

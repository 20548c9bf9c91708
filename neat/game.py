"""The player-level math of one step (SPEC steps 0–1, 3–7), on small per-player vectors.

Pure functions of array-API arrays and :class:`neat.topology.GameTables`; no Python
branching on values, so they trace under ``jax.jit`` and ``torch.compile``. Their
cost is linear in tensors and players (gathers over padded index tables).

A step calls :func:`direction_scalars` before the statistics pass and :func:`settle`
between the two passes. Kernel sets may bring a compiled equivalent of these two
(their ``game`` attribute, see :class:`neat.kernels.StepKernels`); this module is
the reference they are tested against.
"""

from __future__ import annotations

from neat.kernels import TensorScalars
from neat.state import GameState


def direction_scalars(xp, tensor_count, stats_dtype, betas, eps) -> tuple:
    """``scale = √(1 − β2^t) / (1 − β1^t)`` and ``shift = ε √(1 − β2^t)`` (see :mod:`neat.kernels`)
    for ``t = t_k`` (the previous step, SPEC step 2) and ``t = t_k + 1`` (this one, step 9):
    returns ``(prev_scale, cur_scale, prev_shift, cur_shift)``, each ``(K,)``. At ``t = 0`` both
    are 0: the empty moments give the zero direction (SPEC step 2, ``u = 0`` at ``t_k = 1``).
    ``betas`` (a pair) and ``eps``: each a scalar or a ``(K,)`` array (each tensor's own, SPEC v2.1)."""
    taken = xp.astype(tensor_count, stats_dtype)
    steps = xp.stack([taken, taken + 1.0])
    root_second = xp.sqrt(1.0 - betas[1] ** steps)
    scale = root_second / (1.0 - betas[0] ** steps + xp.astype(steps == 0, stats_dtype))
    shift = eps * root_second
    return scale[0, :], scale[1, :], shift[0, :], shift[1, :]


def settle(xp, tables, tensor_sums, game_state: GameState, config, lr, weight_decay, direction, out=None):
    """The game between the two passes: SPEC step 0 (``finite``: every ``⟨g,g⟩`` sum finite),
    step 1 (counts), steps 3–7 on the per-player sums, and the per-tensor scalars of the
    update pass (steps 6, 8, 9). ``tensor_sums``: ``(K, 3)`` from the statistics pass;
    ``lr``, ``weight_decay`` and ``config.betas``: scalars or ``(K,)``; ``direction``:
    :func:`direction_scalars`. A scalar ``β`` stays one scalar in the moments' coefficients.

    Returns ``(TensorScalars, finite, new GameState)``; where ``finite`` is false the new state
    keeps the per-player values and counts only the skipped step. ``out``: a ``GameState`` whose
    arrays receive the new state (it may be ``game_state`` itself), returned as the new state."""
    prev_scale, cur_scale, prev_shift, cur_shift = direction
    sums = player_sums(xp, tables, tensor_sums)
    grad_sq, cross, dir_sq = sums[0, :], sums[1, :], sums[2, :]
    finite = xp.all(xp.isfinite(grad_sq))

    step_taken = xp.astype(finite, game_state.count.dtype)
    count = xp.asarray(game_state.count + step_taken)
    align = alignment(xp, grad_sq, cross, dir_sq)
    conflict, log_step = conflict_and_log_step(
        xp,
        tables,
        align,
        game_state.log_step,
        count <= 1,
        zeta=config.zeta,
        leak=config.leak,
        log_bounds=config.log_step_bounds,
    )
    nge = nge_coefficient(xp, config.gamma, conflict, cross, dir_sq)
    spread = per_tensor(xp, tables, xp.stack([nge, xp.exp(log_step)]))
    beta1, beta2 = config.betas
    scalars = TensorScalars(
        prev_scale,
        prev_shift,
        spread[0, :],
        1.0 - lr * weight_decay * (cur_shift * 0.0 + 1.0),
        lr * spread[1, :] * cur_scale,
        cur_shift,
        beta1,
        1.0 - beta1,
        beta2,
        1.0 - beta2,
    )
    new_state = GameState(
        count=count,
        skipped=xp.asarray(game_state.skipped + (1 - step_taken)),
        tensor_count=game_state.tensor_count + step_taken,
        log_step=xp.where(finite, log_step, game_state.log_step),
        alignment=xp.where(finite, align, game_state.alignment),
        conflict=xp.where(finite, conflict, game_state.conflict),
    )
    if out is not None:
        for target, value in zip(out, new_state):
            target[...] = value
        new_state = out
    return scalars, finite, new_state


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

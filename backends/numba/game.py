"""The per-player game of a step (:mod:`neat.game`) compiled, and whole in-place steps, for the numba kernels.

:func:`direction_scalars` and :func:`settle` compute, element for element, what
:func:`neat.game.direction_scalars` and :func:`neat.game.settle` compute with array
operations; a step's few dozen tiny NumPy operations become two calls of about a
microsecond each. The arithmetic runs in float64 and every result is stored in the
statistics dtype (the array version rounds each operation to that dtype: float32 results
can differ by a few units in the last place, float64 ones by about one).

:func:`play` runs a whole in-place step as one call: the statistics pass of
:mod:`neat.backends.numba.loops`, :func:`settle`, then its update pass. Both read the step's
numbers from one array laid out as :mod:`neat.backends.numba.layout` says.

Loaded at the first use of the compiled kernels (:mod:`neat.backends.numba.first_use`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neat.backends.numba import layout, openmp
from neat.backends.numba.loops import serial_statistics, serial_update, statistics, table_columns, update

_per_tensor = njit(inline="always")(layout.per_tensor)


@njit(cache=True, error_model="numpy")
def direction_scalars(tensor_count, beta1, beta2, eps, out):
    """SPEC steps 2, 9: rows ``prev_scale, cur_scale, prev_shift, cur_shift`` of ``out`` (4, K) for
    ``t = t_k`` and ``t = t_k + 1``: ``scale = √(1 − β2^t) / (1 − β1^t)`` (0 at ``t = 0``) and
    ``shift = ε √(1 − β2^t)``, with each tensor's own ``β1, β2, ε`` (``(K,)`` float64 arrays)."""
    for k in range(tensor_count.size):
        for row in range(2):
            t = np.float64(tensor_count[k] + row)
            root = np.sqrt(1.0 - beta2[k] ** t)
            out[row, k] = root / (1.0 - beta1[k] ** t) if t > 0 else 0.0
            out[2 + row, k] = eps[k] * root


@njit(cache=True, error_model="numpy")
def settle(tensor_sums, tables, state, values, direction, scalars, new_state):
    """SPEC steps 0, 1, 3–7 and the per-tensor scalars of steps 6, 8, 9, for one step.

    ``tensor_sums``: ``(K, 3)`` sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩``; ``tables``: the
    :class:`~neat.topology.GameTables` arrays; ``state``: ``count, skipped`` (1-element arrays),
    ``tensor_count, log_step, alignment, conflict``; ``values``: the step's numbers
    (:mod:`~neat.backends.numba.layout`: ``γ, ζ, ρ, log λmin, log λmax`` and ``lr``, ``weight_decay``,
    ``β1``, ``β2`` per tensor are read); ``direction``: the four ``(K,)`` rows of :func:`direction_scalars`.
    Writes the :class:`~neat.kernels.TensorScalars` rows into ``scalars`` (10, K) and the new
    state into ``new_state`` (the old values of the per-player fields where the step is skipped);
    returns ``finite``."""
    owner, members, member_mask, neighbours, weights = tables
    count, skipped, tensor_count, log_step, alignment, conflict = state
    new_count, new_skipped, new_tensor_count, new_log_step, new_alignment, new_conflict = new_state
    gamma, zeta, leak = values[layout.GAMMA], values[layout.ZETA], values[layout.LEAK]
    log_low, log_high = values[layout.LOG_STEP_LOW], values[layout.LOG_STEP_HIGH]
    lr, weight_decay = _per_tensor(values, layout.LR, owner.size), _per_tensor(values, layout.WEIGHT_DECAY, owner.size)
    beta1, beta2 = _per_tensor(values, layout.BETA1, owner.size), _per_tensor(values, layout.BETA2, owner.size)
    players = members.shape[0]

    # Step 3: player sums; step 0: the step is taken only when every ⟨g,g⟩ is finite.
    sums = np.zeros((3, players))
    finite = True
    for i in range(players):
        for j in range(members.shape[1]):
            if member_mask[i, j] != 0:
                for c in range(3):
                    sums[c, i] += tensor_sums[members[i, j], c]
        finite = finite and np.isfinite(sums[0, i])
    taken = 1 if finite else 0
    new_count[0] = count[0] + taken
    new_skipped[0] = skipped[0] + 1 - taken

    # Step 4: alignment; steps 5, 7: conflict and log-step smoothed by S.
    align = np.empty(players)
    for i in range(players):
        norms = np.sqrt(sums[0, i]) * np.sqrt(sums[2, i])
        align[i] = min(max(sums[1, i] / norms, -1.0), 1.0) if norms > 0 else 0.0
    kappa = np.zeros(players)
    log_lambda = np.empty(players)
    for i in range(players):
        moved = 0.0
        for j in range(neighbours.shape[1]):
            weight, other = np.float64(weights[i, j]), neighbours[i, j]
            kappa[i] += weight * max(-align[other], 0.0)
            moved += weight * ((1.0 - leak) * log_step[other] + zeta * align[other])
        log_lambda[i] = log_step[i] if new_count[0] <= 1 else min(max(moved, log_low), log_high)

    # Step 6: the NGE coefficient γ κ_i C_i / U_i where C_i < 0 and U_i > 0.
    nge = np.zeros(players)
    for i in range(players):
        if sums[1, i] < 0 and sums[2, i] > 0:
            nge[i] = gamma * kappa[i] * (sums[1, i] / sums[2, i])

    prev_scale, cur_scale, prev_shift, cur_shift = direction
    for k in range(owner.size):
        i = owner[k]
        scalars[0, k], scalars[1, k] = prev_scale[k], prev_shift[k]
        scalars[2, k] = nge[i]
        scalars[3, k] = 1.0 - lr[k] * weight_decay[k]
        scalars[4, k] = lr[k] * np.exp(log_lambda[i]) * cur_scale[k]
        scalars[5, k] = cur_shift[k]
        scalars[6, k], scalars[7, k] = beta1[k], 1.0 - beta1[k]
        scalars[8, k], scalars[9, k] = beta2[k], 1.0 - beta2[k]
        new_tensor_count[k] = tensor_count[k] + taken
    for i in range(players):
        new_log_step[i] = log_lambda[i] if finite else log_step[i]
        new_alignment[i] = align[i] if finite else alignment[i]
        new_conflict[i] = kappa[i] if finite else conflict[i]
    return finite


@njit(cache=True, error_model="numpy")
def play(blocks, addresses, likes, state, tables, values, pool):
    """SPEC steps 0–9 in place over the tensors at ``addresses`` (rows ``θ, g, m, v``) of formats
    ``likes``: :func:`direction_scalars`, the statistics pass, :func:`settle` (the new state
    written into ``state``, whose ``log_step`` has the statistics dtype), the update pass.
    ``values``: the step's numbers (:mod:`~neat.backends.numba.layout`). ``pool``: where the
    passes run (:func:`neat.backends.numba.openmp.pool`: torch's
    OpenMP pool, numba's pool, or this thread). The passes are the compiled functions of the
    two-pass kernels, called as they are."""
    p_at, g_at, m_at, v_at = addresses[0], addresses[1], addresses[2], addresses[3]
    rows = (p_at, g_at, m_at, v_at)
    _, g_like, m_like, v_like = likes
    tensors, stats_dtype = p_at.size, state[3].dtype
    direction, totals = np.empty((4, tensors), stats_dtype), np.zeros((tensors, 3))
    tensor_sums, scalars = np.empty((tensors, 3), stats_dtype), np.empty((10, tensors), stats_dtype)
    direction_scalars(
        state[2],
        _per_tensor(values, layout.BETA1, tensors),
        _per_tensor(values, layout.BETA2, tensors),
        _per_tensor(values, layout.EPS, tensors),
        direction,
    )
    partial = np.empty((blocks.shape[0], 3))
    words = openmp.argument_words(blocks, rows, direction, partial, scalars, pool)
    mode = pool[openmp.MODE]
    if mode == openmp.OPENMP:
        openmp.statistics(pool, words, blocks, partial, totals)
    elif mode == openmp.NUMBA_POOL:
        statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, direction[0], direction[2], totals)
    else:
        serial_statistics(blocks, g_at, m_at, v_at, g_like, m_like, v_like, direction[0], direction[2], totals)
    for k in range(totals.shape[0]):
        for c in range(3):
            tensor_sums[k, c] = totals[k, c]
    finite = np.empty((), np.bool_)
    directions = (direction[0], direction[1], direction[2], direction[3])
    finite[()] = settle(tensor_sums, tables, state, values, directions, scalars, state)
    columns = table_columns(scalars)
    in_place = (p_at, g_at, m_at, v_at, p_at, m_at, v_at)
    if mode == openmp.OPENMP:
        if finite[()]:
            openmp.update(pool, words)
    elif mode == openmp.NUMBA_POOL:
        update(blocks, in_place, likes, columns, finite, False)
    else:
        serial_update(blocks, in_place, likes, columns, finite, False)

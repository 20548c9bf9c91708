"""The pure functional API: ``ng_adam(...)`` → ``init`` / ``step`` / ``diagnostics``.

``step`` takes arrays and a state and returns new ones; nothing is read back to the
host, so it runs under ``jax.jit`` as well as eagerly. ``inplace=True`` writes the
parameters, the moments and the game state into the given (mutable) arrays instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat
import array_api_compat.numpy
import numpy as np

from neat import arrays
from neat.config import DEFAULTS, NGAdamConfig, StepHyperparameters
from neat.kernel_selection import KernelPlan, plan_of, select_plan
from neat.kernels import StepKernels, TensorScalars
from neat.state import GameState, NGAdamState
from neat.topology import GameTables, Topology


def _as_list(values, what: str) -> list:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{what} must be a list or tuple of arrays, got {type(values).__qualname__}")
    return list(values)


def init_state(params: Sequence[Any], topology: Topology) -> NGAdamState:
    """A fresh state for ``params`` in the game ``topology`` (SPEC "State")."""
    params = _as_list(params, "params")
    xp = arrays.namespace_of(params, "params")
    arrays.check_floating(xp, params, "params")
    if topology.num_tensors != len(params):
        raise ValueError(f"the players cover {topology.num_tensors} tensors but {len(params)} parameters were given")
    state_dtypes = [arrays.state_dtype(xp, p.dtype) for p in params]
    stats_dtype = arrays.statistics_dtype(xp, state_dtypes)
    device = array_api_compat.device(params[0])
    return NGAdamState(
        game=GameState.zeros(xp, len(params), topology.num_players, stats_dtype, device),
        exp_avg=[xp.zeros_like(p, dtype=d) for p, d in zip(params, state_dtypes)],
        exp_avg_sq=[xp.zeros_like(p, dtype=d) for p, d in zip(params, state_dtypes)],
        tables=topology.tables(xp, device, stats_dtype),
    )


def grown_state(state: NGAdamState, new_params: Sequence[Any], topology: Topology) -> NGAdamState:
    """``state`` after ``new_params`` join the game, ``topology`` being the grown game
    (:meth:`Topology.grown`; SPEC "Growing the game"): the joining tensors get ``m = v = 0`` and
    ``t_k = 0``, new players ``z = 0``, the existing entries are kept; the tables are the grown game's.
    Pure: ``state`` is unchanged. The joining arrays must share the namespace, device and statistics
    dtype of the existing ones."""
    new_params = _as_list(new_params, "new_params")
    if topology.num_tensors != state.num_tensors + len(new_params):
        raise ValueError(
            f"the grown game has {topology.num_tensors} tensors, but {state.num_tensors} + {len(new_params)} were given"
        )
    xp = arrays.namespace_of([*state.exp_avg, *new_params], "params")
    arrays.check_floating(xp, new_params, "new_params")
    state_dtypes = [arrays.state_dtype(xp, p.dtype) for p in new_params]
    stats_dtype = state.game.log_step.dtype
    if arrays.statistics_dtype(xp, [*(m.dtype for m in state.exp_avg), *state_dtypes]) != stats_dtype:
        raise ValueError(
            f"the joining parameters would change the statistics dtype ({stats_dtype}) of the game: "
            'a game keeps its statistics dtype (SPEC "State")'
        )
    device = array_api_compat.device(state.game.log_step)
    return NGAdamState(
        game=state.game.grown(xp, len(new_params), topology.num_players - state.num_players),
        exp_avg=[*state.exp_avg, *(xp.zeros_like(p, dtype=d) for p, d in zip(new_params, state_dtypes))],
        exp_avg_sq=[*state.exp_avg_sq, *(xp.zeros_like(p, dtype=d) for p, d in zip(new_params, state_dtypes))],
        tables=topology.tables(xp, device, stats_dtype),
    )


def _checked_namespace(params, grads, moments, xp=None):
    """The namespace of the (active) ``params`` and ``grads`` (``xp`` when given: no plug-in
    lookup), after checking their dtypes and that ``grads`` and ``moments`` match ``params``
    (metadata only)."""
    if xp is None:
        xp = arrays.namespace_of([*params, *grads], "params and grads")
    arrays.check_floating(xp, params, "params")
    arrays.check_like(xp, params, grads, moments)
    return xp


def step(
    params: Sequence[Any],
    grads: Sequence[Any],
    state: NGAdamState,
    config: NGAdamConfig | StepHyperparameters,
    *,
    lr=None,
    weight_decay=None,
    betas=None,
    eps=None,
    kernels: str | StepKernels | KernelPlan | None = None,
    inplace: bool = False,
    topology: Topology | None = None,
    xp=None,
) -> tuple[list, NGAdamState]:
    """One NG-Adam step, SPEC steps 0–9. Returns ``(new_params, new_state)``.

    ``grads[k] is None`` marks tensor ``k`` inactive this step (SPEC v2): it is left as
    it is and the game is played by the players of the active tensors; this needs the
    state's ``topology`` (a :class:`~neat.topology.Topology`), which front ends keep.
    ``lr``, ``weight_decay``, ``betas`` (a pair) and ``eps`` override the config's: each value a
    scalar (float or 0-d array, e.g. a schedule's value) or one value per tensor (a list or a
    ``(K,)`` array: param groups, SPEC v2.1); so may the config's own. ``config``: an
    :class:`~neat.config.NGAdamConfig`, or :class:`~neat.config.StepHyperparameters` when a
    framework traces the hyperparameters.
    ``kernels``: ``None`` (the fastest registered set that applies), a registered
    name (``"generic"``, ``"numba"``, ``"triton"``, …) or a kernels object.
    ``inplace=True``: the new parameters, moments and game state are written into the given
    (mutable) arrays, which are returned.
    ``xp``: the arrays' namespace, resolved by the caller (``None``: asked of the plug-ins); with
    ``xp`` and a kernels object the step calls no plug-in hook (``torch.compile`` cannot trace them).
    """
    params, grads = _as_list(params, "params"), _as_list(grads, "grads")
    if not isinstance(state, NGAdamState):
        raise TypeError(f"state must be an NGAdamState from init(), got {type(state).__qualname__}")
    if len(params) != state.num_tensors:
        raise ValueError(f"got {len(params)} parameters but the state was initialised for {state.num_tensors}")
    if len(grads) != len(params):
        raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
    active = tuple(k for k, g in enumerate(grads) if g is not None)
    lr = config.lr if lr is None else lr
    weight_decay = config.weight_decay if weight_decay is None else weight_decay
    config = _with_betas_and_eps(config, config.betas if betas is None else betas, config.eps if eps is None else eps)
    if len(active) == len(params):
        return _step_all(params, grads, state, config, lr, weight_decay, kernels, inplace, xp)
    if topology is None:
        raise ValueError(
            "some gradients are None (inactive tensors): pass the game's topology= so that the "
            "step can be played by the active players"
        )
    if not active:
        return params, state
    return _step_active(params, grads, state, config, lr, weight_decay, kernels, inplace, topology, active, xp)


def _with_betas_and_eps(config, betas, eps):
    """``config`` with these ``betas`` and ``eps`` (itself when they are its own): a
    :class:`~neat.config.StepHyperparameters`, whose values may be arrays."""
    if betas is config.betas and eps is config.eps:
        return config
    if isinstance(betas, str) or not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return StepHyperparameters.read(config, betas=tuple(betas), eps=eps)


def _converted_betas_and_eps(config, convert):
    """``config`` with ``convert(value, name)`` of each of its ``β1``, ``β2``, ``ε``; itself when
    they are all Python numbers (the usual case: nothing is built)."""
    (beta1, beta2), eps = config.betas, config.eps
    if all(isinstance(value, (int, float)) for value in (beta1, beta2, eps)):
        return config
    return config._replace(betas=(convert(beta1, "betas[0]"), convert(beta2, "betas[1]")), eps=convert(eps, "eps"))


def _step_all(params, grads, state, config, lr, weight_decay, kernels, inplace, xp):
    xp = _checked_namespace(params, grads, state.exp_avg, xp)
    lr_k = _per_tensor(xp, lr, len(params), state.game.log_step, "lr")
    decay_k = _per_tensor(xp, weight_decay, len(params), state.game.log_step, "weight_decay")
    config = _converted_betas_and_eps(
        config, lambda value, what: _per_tensor(xp, value, len(params), state.game.log_step, what)
    )
    new_params, game_state, exp_avg, exp_avg_sq = play(
        xp,
        params,
        grads,
        state.exp_avg,
        state.exp_avg_sq,
        state.game,
        state.tables,
        config,
        lr_k,
        decay_k,
        select_plan(xp, params, kernels),
        inplace,
    )
    return new_params, NGAdamState(game_state, exp_avg, exp_avg_sq, state.tables)


def _step_active(params, grads, state, config, lr, weight_decay, kernels, inplace, topology, active, xp):
    """The sub-game of the active tensors (SPEC v2): gather their state, play, scatter it back."""
    sub_params = [params[k] for k in active]
    sub_grads = [grads[k] for k in active]
    sub_avg, sub_avg_sq = [state.exp_avg[k] for k in active], [state.exp_avg_sq[k] for k in active]
    xp = _checked_namespace(sub_params, sub_grads, sub_avg, xp)
    lr_k = _per_tensor(xp, lr, len(params), state.game.log_step, "lr")
    decay_k = _per_tensor(xp, weight_decay, len(params), state.game.log_step, "weight_decay")
    config = _converted_betas_and_eps(
        config, lambda value, what: _per_tensor(xp, value, len(params), state.game.log_step, what)
    )
    sub, scatter = topology.restrict(active)
    game_state = state.game
    game_xp = array_api_compat.numpy if isinstance(game_state.log_step, np.ndarray) else xp  # see host_game
    stats_dtype = game_state.log_step.dtype
    device = _device_of(game_state.log_step)
    indices = scatter.arrays(game_xp, device)
    sub_game = GameState(
        game_state.count,
        game_state.skipped,
        game_xp.take(game_state.tensor_count, indices.tensors),
        *(game_xp.take(getattr(game_state, name), indices.players) for name in ("log_step", "alignment", "conflict")),
    )
    new_sub_params, new_game, sub_avg, sub_avg_sq = play(
        xp,
        sub_params,
        sub_grads,
        sub_avg,
        sub_avg_sq,
        sub_game,
        sub.tables(game_xp, device, stats_dtype),
        _converted_betas_and_eps(config, lambda value, _: _take(game_xp, value, indices.tensors)),
        _take(game_xp, lr_k, indices.tensors),
        _take(game_xp, decay_k, indices.tensors),
        select_plan(xp, sub_params, kernels),
        inplace,
    )

    def scattered(sub_values, full, positions, mask):
        return game_xp.where(mask, game_xp.take(sub_values, positions), full)

    new_game = GameState(
        new_game.count,
        new_game.skipped,
        scattered(new_game.tensor_count, game_state.tensor_count, indices.tensor_position, indices.tensor_mask),
        *(
            scattered(getattr(new_game, name), getattr(game_state, name), indices.player_position, indices.player_mask)
            for name in ("log_step", "alignment", "conflict")
        ),
    )
    if inplace:
        new_game = _written(game_state, new_game)
    new_params, exp_avg, exp_avg_sq = list(params), list(state.exp_avg), list(state.exp_avg_sq)
    for local, k in enumerate(active):
        new_params[k], exp_avg[k], exp_avg_sq[k] = new_sub_params[local], sub_avg[local], sub_avg_sq[local]
    return new_params, NGAdamState(new_game, exp_avg, exp_avg_sq, state.tables)


def play(
    xp,
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    game_state: GameState,
    tables: GameTables,
    config: NGAdamConfig | StepHyperparameters,
    lr,
    weight_decay,
    kernels: StepKernels | KernelPlan,
    inplace: bool,
):
    """SPEC steps 0–9 over tensors that all have gradients. ``lr``, ``weight_decay`` and the
    config's ``betas`` and ``eps``: scalars (floats or 0-d arrays) or ``(K,)`` arrays. Returns
    ``(params, game_state, exp_avg, exp_avg_sq)``.

    As the kernels' plan (:class:`~neat.kernel_selection.KernelPlan`) says: the game and the
    per-tensor scalars are computed in its ``game_xp`` namespace when it names one (CPU kernels
    take NumPy: a few dozen tiny ops cost far less there than as framework ops), the small state
    handed back in ``xp``; an in-place step is its ``fused_play`` when it has one and that takes
    these arrays (one compiled call)."""
    plan = plan_of(kernels)
    game_xp = plan.game_xp or xp
    game_state_in = game_state
    if game_xp is not xp:
        game_state, tables, lr, weight_decay = (
            _moved(game_xp, value) for value in (game_state, tables, lr, weight_decay)
        )
        config = _converted_betas_and_eps(config, lambda value, _: _moved(game_xp, value))
    if (
        inplace
        and plan.fused_play is not None
        and plan.fused_play(params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr, weight_decay)
    ):
        return params, game_state_in, exp_avg, exp_avg_sq
    with _quiet_numpy(xp, game_xp):
        new_params, new_state, exp_avg, exp_avg_sq = _play(
            xp,
            game_xp,
            params,
            grads,
            exp_avg,
            exp_avg_sq,
            game_state,
            tables,
            config,
            lr,
            weight_decay,
            plan,
            inplace,
        )
    if inplace:  # written into the given arrays (through NumPy views of them when game_xp is NumPy)
        return new_params, game_state_in, exp_avg, exp_avg_sq
    return new_params, new_state if game_xp is xp else _moved(xp, new_state), exp_avg, exp_avg_sq


def _written(target: GameState, values: GameState) -> GameState:
    """``values`` written into the arrays of ``target``, which is returned."""
    for array, value in zip(target, values):
        array[...] = value
    return target


def host_game(kernels: StepKernels | KernelPlan, game_state: GameState) -> GameState:
    """``game_state`` as the ``kernels`` play the game: NumPy views of its (host) arrays when their
    plan names a ``game_xp`` (writes through the views reach ``game_state``), else itself. A front
    end that steps in place with such a state moves nothing at each step; :func:`step` keeps the
    per-tensor hyperparameters and a sub-game's gathers in NumPy for it."""
    game_xp = plan_of(kernels).game_xp
    return game_state if game_xp is None else _moved(game_xp, game_state)


def game_tables(kernels: StepKernels | KernelPlan, topology: Topology, xp, device, stats_dtype) -> GameTables:
    """``topology``'s tables in the namespace ``kernels`` play the game in (their plan's ``game_xp``,
    else ``xp``, on ``device``): a front end that keeps them so moves nothing at each step."""
    game_xp = plan_of(kernels).game_xp
    if game_xp is None or game_xp is xp:
        return topology.tables(xp, device, stats_dtype)
    return topology.tables(game_xp, "cpu", getattr(game_xp, str(stats_dtype).rsplit(".", 1)[-1]))


def _quiet_numpy(*namespaces):
    """NumPy warns about the NaN and infinities a skipped step carries (SPEC step 0 discards them
    by design); other namespaces do not warn."""
    if any(xp is array_api_compat.numpy or xp is np for xp in namespaces):  # identity: traceable by dynamo
        return np.errstate(invalid="ignore", over="ignore", divide="ignore")
    return contextlib.nullcontext()


def _moved(xp, value):
    """``value`` (an array, a Python number or a flat tuple of arrays) in namespace ``xp`` (no copy on
    the same device, e.g. torch CPU tensors ↔ NumPy arrays: writes into the result reach
    ``value``). NumPy's own ``asarray`` is called directly: the compat wrapper costs more than
    the conversion."""
    convert = np.asarray if xp is array_api_compat.numpy else xp.asarray
    if isinstance(value, tuple):  # a GameState or GameTables: a flat tuple of arrays
        return type(value)(*map(convert, value))
    return value if isinstance(value, (int, float)) else convert(value)


def _play(
    array_xp, xp, params, grads, exp_avg, exp_avg_sq, game_state, tables, config, lr, weight_decay, plan, inplace
):
    """:func:`play` with the big arrays in ``array_xp`` and the game in ``xp``: the plan's two
    passes around its game rules (compiled, or :mod:`neat.game`); with ``inplace`` the new game
    state is written into ``game_state``'s arrays."""
    rules, kernels = plan.rules, plan.kernels
    stats_dtype = game_state.log_step.dtype
    direction = rules.direction_scalars(xp, game_state.tensor_count, stats_dtype, config.betas, config.eps)
    # Steps 2, 3: statistics pass; step 0: the one non-finite test is in settle (a non-finite g makes its G_i so).
    previous = TensorScalars(direction[0], direction[2], *(None,) * 8)
    statistics = kernels.statistics(array_xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype)
    scalars, finite, new_state = rules.settle(
        xp,
        tables,
        statistics.sums,
        game_state,
        config,
        lr,
        weight_decay,
        direction,
        out=game_state if inplace else None,
    )
    # Steps 8, 9: update pass.
    new_params, exp_avg, exp_avg_sq = kernels.update(
        array_xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace
    )
    return new_params, new_state, exp_avg, exp_avg_sq


def _per_tensor(xp, value, num_tensors: int, like, what: str):
    """A hyperparameter for :func:`play`: a Python number as it is (one value for all tensors), an
    array in ``like``'s dtype (0-d, or one value per tensor), or a list of one value per tensor as a
    ``(K,)`` array like ``like``. A NumPy ``like`` (a game state kept on the host, see
    :func:`host_game`) makes a NumPy result."""
    if isinstance(value, (int, float)):
        return value
    if isinstance(like, np.ndarray):
        xp = array_api_compat.numpy
    if isinstance(value, (list, tuple)):
        if len(value) != num_tensors:
            raise ValueError(f"{what}: got {len(value)} per-tensor values for {num_tensors} tensors")
        dtype, device = like.dtype, _device_of(like)
        return xp.stack([xp.asarray(v, dtype=dtype, device=device) for v in value])
    shape = tuple(getattr(value, "shape", ()))
    if shape not in ((), (num_tensors,)):
        raise ValueError(f"{what}: expected a scalar or {num_tensors} per-tensor values, got shape {shape}")
    return xp.astype(np.asarray(value) if xp is array_api_compat.numpy else value, like.dtype)


def _device_of(array):
    """The array's device; a torch tensor's read directly (``torch.compile`` traces that, and not
    array-api-compat's cached type checks)."""
    if type(array).__module__.startswith("torch"):
        return array.device
    return array_api_compat.device(array)


def _take(xp, value, indices):
    """The active tensors' entries of a per-tensor ``(K,)`` value; a scalar stays as it is."""
    return xp.take(value, indices) if getattr(value, "ndim", 0) == 1 else value


def diagnostics(state) -> dict:
    """Per-player ``alignment`` (a), ``kappa`` (κ), ``step_scale`` (λ = e^z); global
    ``mean_alignment`` and ``skipped_steps`` (SPEC "Diagnostics"). Arrays, not host values; after
    in-place steps ``alignment``, ``kappa`` and ``skipped_steps`` are the state's own arrays, which
    the next in-place step overwrites (copy them to keep them).
    ``state``: an :class:`NGAdamState` or its :class:`GameState`."""
    game_state = state.game if isinstance(state, NGAdamState) else state
    xp = array_api_compat.array_namespace(game_state.log_step)
    return {
        "alignment": game_state.alignment,
        "kappa": game_state.conflict,
        "step_scale": xp.exp(game_state.log_step),
        "mean_alignment": xp.mean(game_state.alignment),
        "skipped_steps": game_state.skipped,
    }


@dataclass(frozen=True)
class NGAdam:
    """The functional NG-Adam optimizer returned by :func:`ng_adam` (explicit state, pure step)."""

    config: NGAdamConfig
    kernels: str | StepKernels | KernelPlan | None = None

    def init(self, params: Sequence[Any], players=None, graph=None) -> NGAdamState:
        """State for ``params`` (a list of arrays). ``players``: lists of tensor indices
        (None: one player per tensor). ``graph``: n×n weights, ``(i, j, w)`` edges or None (chain)."""
        params = _as_list(params, "params")
        return init_state(params, Topology.build(len(params), players, graph, mu=self.config.mu))

    def step(self, params, grads, state: NGAdamState):
        """``(params, state) → (new params, new state)``; see :func:`step`."""
        return step(params, grads, state, self.config, kernels=self.kernels)

    @staticmethod
    def diagnostics(state: NGAdamState) -> dict:
        return diagnostics(state)


def ng_adam(
    *,
    lr: float = DEFAULTS["lr"],
    betas=DEFAULTS["betas"],
    eps: float = DEFAULTS["eps"],
    weight_decay: float = DEFAULTS["weight_decay"],
    gamma: float = DEFAULTS["gamma"],
    zeta: float = DEFAULTS["zeta"],
    mu: float = DEFAULTS["mu"],
    step_bounds=DEFAULTS["step_bounds"],
    leak: float = DEFAULTS["leak"],
    kernels: str | StepKernels | KernelPlan | None = None,
) -> NGAdam:
    """NG-Adam with validated hyperparameters (docs/spec.md "Hyperparameters"); see :class:`NGAdam`.

    * ``lr`` (η ≥ 0), ``betas`` (0 ≤ β < 1), ``eps`` (ε ≥ 0, after the square root),
      ``weight_decay`` (ω ≥ 0, decoupled): as in AdamW.
    * ``gamma`` (γ ∈ [0, 1]): NGE strength; 1 removes the conflicting projection.
    * ``zeta`` (ζ ≥ 0): NSA rate on the per-player log-step.
    * ``mu`` (μ ≥ 0): coupling through the player graph; 0 makes players independent.
    * ``step_bounds`` (0 < λmin ≤ 1 ≤ λmax): range of a player's step multiplier.
    * ``leak`` (ρ ∈ [0, 1)): pull of the log-step back towards 0.
    * ``kernels``: the array passes (see :func:`step`).

    Defaults are :data:`neat.config.DEFAULTS`. ``gamma = zeta = 0`` is exactly AdamW.
    Every invalid value raises ``ValueError`` naming it.
    """
    return NGAdam(
        NGAdamConfig(lr, betas, eps, weight_decay, gamma, zeta, mu, step_bounds, leak),
        kernels,
    )

"""An independent float64 reference of docs/spec.md (version 2), written for reading, not speed.

Plain NumPy and Python loops, one block per SPEC step, sharing no code with
``neat``'s core (only the spec). The golden vectors are produced from it, and
every backend and adapter is checked against it. Everything, the log-step ``z``
included, is float64: the statistics dtype of a float64 run (SPEC "State").

* A gradient ``None`` marks an inactive tensor: it and its moments are left alone, its
  count ``t_k`` does not advance, and the step is played by the players owning active
  tensors on the sub-graph they induce (``S`` of that sub-graph, once per pattern).
  A step without any active tensor changes nothing (there is no game to play).
* A complex tensor is handled as the real tensor of its real and imaginary parts
  (``torch.view_as_real``); ``params`` gives it back complex.
* ``lr``, ``weight_decay``, ``eps`` and ``betas`` may be one value for all tensors or a list of one
  value per tensor (``betas``: a list of pairs), and may be changed in ``hp`` between steps: every
  formula uses the tensor's own values at the step (SPEC v2.1, ``β^(t_k)`` with the current ``β``).
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_operator(weights: np.ndarray, mu: float) -> np.ndarray:
    """``S = (I + μ (D − W))^{-1}``."""
    laplacian = np.diag(weights.sum(axis=1)) - weights
    return np.linalg.inv(np.eye(len(weights)) + mu * laplacian)


def as_real(array) -> np.ndarray:
    """A float64 copy; a complex array becomes its ``(..., 2)`` real and imaginary parts."""
    array = np.asarray(array)
    if np.iscomplexobj(array):
        return np.stack([array.real, array.imag], axis=-1).astype(np.float64)
    return np.array(array, dtype=np.float64)


class ReferenceNGAdam:
    """NG-Adam in float64. ``hp``: dict of SPEC hyperparameters (``lr``, ``betas``, …)."""

    def __init__(self, params, players, weights, hp):
        self.hp = dict(hp)
        self.players = [list(p) for p in players]
        self.weights = np.asarray(weights, dtype=np.float64)
        self.is_complex = [bool(np.iscomplexobj(p)) for p in params]
        self.theta = [as_real(p) for p in params]
        self.m = [np.zeros_like(p) for p in self.theta]
        self.v = [np.zeros_like(p) for p in self.theta]
        n = len(self.players)
        self.t = 0
        self.tensor_count = [0] * len(self.theta)
        self.skipped = 0
        self.z = np.zeros(n)
        self.a = np.zeros(n)
        self.kappa = np.zeros(n)
        self._smoothing: dict[tuple, np.ndarray] = {}

    @property
    def params(self) -> list:
        """The parameters, complex ones given back as complex arrays."""
        return [p[..., 0] + 1j * p[..., 1] if c else p for p, c in zip(self.theta, self.is_complex)]

    @params.setter
    def params(self, values) -> None:
        self.theta = [as_real(p) for p in values]

    def smoothing(self, players: tuple) -> np.ndarray:
        """``S`` of the sub-graph induced by ``players`` (computed once per pattern)."""
        if players not in self._smoothing:
            sub = self.weights[np.ix_(players, players)]
            self._smoothing[players] = smoothing_operator(sub, self.hp["mu"])
        return self._smoothing[players]

    def of_tensor(self, name: str, k: int):
        """Tensor ``k``'s value of hyperparameter ``name``: its entry of a per-tensor list, or the
        one value of all tensors."""
        value = self.hp[name]
        if name == "betas":
            return tuple(value[k]) if isinstance(value[0], (list, tuple)) else tuple(value)
        return value[k] if isinstance(value, (list, tuple)) else value

    def _direction(self, m, v, t, k):
        """``(m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)`` with tensor ``k``'s ``β1, β2, ε``, 0 where
        the denominator is 0."""
        b1, b2 = self.of_tensor("betas", k)
        denominator = np.sqrt(v / (1 - b2**t)) + self.of_tensor("eps", k)
        direction = np.zeros_like(m)
        np.divide(m / (1 - b1**t), denominator, out=direction, where=denominator > 0)
        return direction

    def step(self, grads):
        hp = self.hp
        g = {k: as_real(x) for k, x in enumerate(grads) if x is not None}
        if not g:
            return
        # The sub-game: the players owning an active tensor, and their active tensors.
        playing = tuple(i for i, group in enumerate(self.players) if any(k in g for k in group))
        groups = [[k for k in self.players[i] if k in g] for i in playing]
        S = self.smoothing(playing)
        # 0. non-finite guard, part 1: any non-finite gradient element
        if not all(np.all(np.isfinite(x)) for x in g.values()):
            self.skipped += 1
            return
        # 1. (tentative: undone below if step 0 skips on G)
        t = self.t + 1
        t_k = {k: self.tensor_count[k] + 1 for k in g}
        # 2. last update direction
        u = {k: np.zeros_like(g[k]) if t_k[k] == 1 else self._direction(self.m[k], self.v[k], t_k[k] - 1, k) for k in g}
        # 3. player statistics (float64 sums of float64 products)
        n = len(playing)
        G, C, U = np.zeros(n), np.zeros(n), np.zeros(n)
        with np.errstate(over="ignore"):
            for i, group in enumerate(groups):
                for k in group:
                    G[i] += np.sum(g[k] * g[k])
                    C[i] += np.sum(g[k] * u[k])
                    U[i] += np.sum(u[k] * u[k])
        # 0. non-finite guard, part 2: a player's G_i overflows float64
        if not np.all(np.isfinite(G)):
            self.skipped += 1
            return
        self.t = t
        for k in g:
            self.tensor_count[k] = t_k[k]
        # 4. alignment, 0 where sqrt(G) sqrt(U) = 0
        a = np.zeros(n)
        for i in range(n):
            norms = math.sqrt(G[i]) * math.sqrt(U[i])
            if norms > 0:
                a[i] = min(1.0, max(-1.0, C[i] / norms))
        # 5. conflict
        r = np.maximum(0.0, -a)
        kappa = S @ r
        # 6. NGE
        g_hat = dict(g)
        for i, group in enumerate(groups):
            if C[i] < 0 and U[i] > 0:
                for k in group:
                    g_hat[k] = g[k] - hp["gamma"] * kappa[i] * (C[i] / U[i]) * u[k]
        # 7. NSA
        z = self.z[list(playing)]
        if t > 1:
            lo, hi = hp["step_bounds"]
            z = np.clip(S @ ((1 - hp["leak"]) * z + hp["zeta"] * a), math.log(lo), math.log(hi))
        lam = np.exp(z)
        for i, group in enumerate(groups):
            for k in group:
                b1, b2 = self.of_tensor("betas", k)
                lr, weight_decay = self.of_tensor("lr", k), self.of_tensor("weight_decay", k)
                # 8. moments
                self.m[k] = b1 * self.m[k] + (1 - b1) * g_hat[k]
                self.v[k] = b2 * self.v[k] + (1 - b2) * g[k] ** 2
                # 9. update
                self.theta[k] = self.theta[k] * (1 - lr * weight_decay)
                self.theta[k] = self.theta[k] - lr * lam[i] * self._direction(self.m[k], self.v[k], t_k[k], k)
        for i, player in enumerate(playing):
            self.z[player], self.a[player], self.kappa[player] = z[i], a[i], kappa[i]

    def diagnostics(self):
        return {
            "alignment": self.a.copy(),
            "kappa": self.kappa.copy(),
            "step_scale": np.exp(self.z),
            "mean_alignment": float(np.mean(self.a)),
            "skipped_steps": self.skipped,
        }

"""An independent float64 reference of SPEC.md, written for reading, not speed.

Plain NumPy and Python loops, one line per SPEC step, sharing no code with
``neat``'s core (only the spec). The golden vectors are produced from it, and
every backend and adapter is checked against it. The log-step ``z`` is stored
in float32 between steps, as SPEC.md's "State" says; everything else is float64.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_operator(weights: np.ndarray, mu: float) -> np.ndarray:
    """``S = (I + μ (D − W))^{-1}``."""
    laplacian = np.diag(weights.sum(axis=1)) - weights
    return np.linalg.inv(np.eye(len(weights)) + mu * laplacian)


class ReferenceNGAdam:
    """NG-Adam in float64. ``hp``: dict of SPEC hyperparameters (``lr``, ``betas``, …)."""

    def __init__(self, params, players, weights, hp):
        self.hp = dict(hp)
        self.players = [list(p) for p in players]
        self.S = smoothing_operator(np.asarray(weights, dtype=np.float64), self.hp["mu"])
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        n = len(self.players)
        self.t = 0
        self.skipped = 0
        self.z = np.zeros(n, dtype=np.float32)
        self.a = np.zeros(n)
        self.kappa = np.zeros(n)

    def _direction(self, m, v, t):
        b1, b2 = self.hp["betas"]
        return (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + self.hp["eps"])

    def step(self, grads):
        hp = self.hp
        b1, b2 = hp["betas"]
        grads = [np.asarray(g, dtype=np.float64) for g in grads]
        # 0. non-finite guard
        if not all(np.all(np.isfinite(g)) for g in grads):
            self.skipped += 1
            return
        # 1.
        self.t += 1
        t = self.t
        # 2. last update direction
        if t == 1:
            u = [np.zeros_like(g) for g in grads]
        else:
            u = [self._direction(m, v, t - 1) for m, v in zip(self.m, self.v)]
        n = len(self.players)
        G, C, U = np.zeros(n), np.zeros(n), np.zeros(n)
        a = np.zeros(n)
        for i, group in enumerate(self.players):
            # 3. player statistics
            G[i] = sum(float(np.sum(grads[k] * grads[k])) for k in group)
            C[i] = sum(float(np.sum(grads[k] * u[k])) for k in group)
            U[i] = sum(float(np.sum(u[k] * u[k])) for k in group)
            # 4. alignment
            if G[i] * U[i] != 0:
                a[i] = min(1.0, max(-1.0, C[i] / (math.sqrt(G[i]) * math.sqrt(U[i]))))
        # 5. conflict
        r = np.maximum(0.0, -a)
        kappa = self.S @ r
        # 6. NGE
        g_hat = list(grads)
        for i, group in enumerate(self.players):
            if C[i] < 0 and U[i] > 0:
                for k in group:
                    g_hat[k] = grads[k] - hp["gamma"] * kappa[i] * (C[i] / U[i]) * u[k]
        # 7. NSA
        if t > 1:
            z = self.S @ ((1 - hp["leak"]) * self.z.astype(np.float64) + hp["zeta"] * a)
            lo, hi = hp["step_bounds"]
            self.z = np.clip(z, math.log(lo), math.log(hi)).astype(np.float32)
        lam = np.exp(self.z.astype(np.float64))
        owner = {k: i for i, group in enumerate(self.players) for k in group}
        for k in range(len(self.params)):
            # 8. moments
            self.m[k] = b1 * self.m[k] + (1 - b1) * g_hat[k]
            self.v[k] = b2 * self.v[k] + (1 - b2) * grads[k] ** 2
            # 9. update
            self.params[k] = self.params[k] * (1 - hp["lr"] * hp["weight_decay"])
            self.params[k] = self.params[k] - hp["lr"] * lam[owner[k]] * self._direction(self.m[k], self.v[k], t)
        self.a, self.kappa = a, kappa

    def diagnostics(self):
        return {
            "alignment": self.a.copy(),
            "kappa": self.kappa.copy(),
            "step_scale": np.exp(self.z.astype(np.float64)),
            "mean_alignment": float(np.mean(self.a)),
            "skipped_steps": self.skipped,
        }

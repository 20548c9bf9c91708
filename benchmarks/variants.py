"""Candidate changes to NEAT's update rule, implemented in the harness only (never in ``neat/``).

:class:`HarnessNEAT` is a plain per-tensor PyTorch transcription of SPEC v2 (docs/spec.md,
steps 0–9, every tensor active, statistics in float64) with three optional changes, each off by
default; with both off it gives ``neat.torch.NGAdam``'s numbers to rounding (checked in
``tests/benchmarks``):

* ``alignment_ema = β_a > 0`` — **NSA driven by a smoothed alignment**: step 7 uses
  ``â = ā / (1 − β_a^s)`` with ``ā ← β_a ā + (1 − β_a) a`` (``s`` = number of NSA updates so far)
  instead of the raw ``a``; NGE (step 6) still uses the raw ``a``.
* ``elementwise=True`` — **element-wise conflict correction**: step 6 becomes
  ``ĝ = g · (1 − γ · 1[g ⊙ u < 0])`` element by element (a gradient element that points against
  the last update direction is damped by γ), instead of removing ``γ κ_i`` of the player's
  projection on ``u``.
* ``clipped=True`` — **NGE inside the gradient's support** (a proposed fix of SPEC v2.1, see
  ``benchmarks/adam_bound.py``): step 6's correction is clipped element by element to ``±|g|``,
  ``ĝ = g − clip(γ κ_i (C_i/U_i) u, −|g|, |g|)``, so ``ĝ = 0`` wherever ``g = 0`` and ``m`` no
  longer grows in coordinates whose ``v`` decays.

It is slow (one Python loop per tensor, no fused kernels): its step time is not NEAT's.
"""

from __future__ import annotations

import math

import torch

from neat.adapters.torch_adapter import module_layout
from neat.config import DEFAULTS
from neat.topology import Topology


class HarnessNEAT(torch.optim.Optimizer):
    def __init__(self, model: torch.nn.Module, alignment_ema=0.0, elementwise=False, clipped=False, **hyperparameters):
        """``hyperparameters``: those of ``neat.torch.NGAdam`` (the library's defaults for the rest)."""
        unknown = sorted(set(hyperparameters) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"HarnessNEAT got unknown hyperparameters {unknown}")
        hp = {**DEFAULTS, **hyperparameters}
        layout = module_layout(model)
        params = list(layout.tensors)
        self.betas, self.eps = tuple(hp["betas"]), hp["eps"]
        super().__init__(params, dict(lr=hp["lr"], weight_decay=hp["weight_decay"], betas=self.betas, eps=self.eps))
        self.gamma, self.zeta, self.leak = hp["gamma"], hp["zeta"], hp["leak"]
        step_bounds, mu = hp["step_bounds"], hp["mu"]
        self.log_bounds = (math.log(step_bounds[0]), math.log(step_bounds[1]))
        self.alignment_ema, self.elementwise, self.clipped = alignment_ema, elementwise, clipped
        self.players = [list(group) for group in layout.players]
        self.owner = [0] * len(params)
        for i, group in enumerate(self.players):
            for k in group:
                self.owner[k] = i
        device = params[0].device
        smoothing = Topology.build(len(params), self.players, layout.graph, mu=mu).smoothing()
        self.S = torch.as_tensor(smoothing, dtype=torch.float64, device=device)
        n = len(self.players)
        self.t = 0
        self.nsa_updates = 0
        self.skipped = 0
        self.z = torch.zeros(n, dtype=torch.float64, device=device)
        self.a_bar = torch.zeros(n, dtype=torch.float64, device=device)
        self.last_alignment = torch.zeros(n, dtype=torch.float64, device=device)
        self.last_kappa = torch.zeros(n, dtype=torch.float64, device=device)

    def _direction(self, m, v, t):
        beta1, beta2 = self.betas
        denom = (v / (1 - beta2**t)).sqrt() + self.eps
        return torch.where(denom > 0, (m / (1 - beta1**t)) / denom, torch.zeros_like(m))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        group = self.param_groups[0]
        lr, decay = group["lr"], group["weight_decay"]
        params = group["params"]
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise ValueError("HarnessNEAT plays every tensor: each parameter needs a gradient")
        n = len(self.players)
        G = torch.zeros(n, dtype=torch.float64, device=self.z.device)
        C, U = torch.zeros_like(G), torch.zeros_like(G)
        directions = []
        for k, (p, g) in enumerate(zip(params, grads)):  # steps 2-3
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            u = (
                self._direction(state["exp_avg"], state["exp_avg_sq"], state["step"])
                if state["step"] >= 1
                else torch.zeros_like(p)
            )
            directions.append(u)
            i = self.owner[k]
            G[i] += (g.double() * g.double()).sum()
            C[i] += (g.double() * u.double()).sum()
            U[i] += (u.double() * u.double()).sum()
        if not bool(torch.isfinite(G).all()):  # step 0
            self.skipped += 1
            return loss
        self.t += 1
        norm = G.sqrt() * U.sqrt()
        a = torch.where(norm > 0, C / torch.where(norm > 0, norm, 1.0), 0.0).clamp(-1, 1)  # step 4
        kappa = self.S @ torch.clamp(-a, min=0.0)  # step 5
        if self.t > 1:  # step 7
            drive = a
            if self.alignment_ema > 0:
                self.nsa_updates += 1
                self.a_bar = self.alignment_ema * self.a_bar + (1 - self.alignment_ema) * a
                drive = self.a_bar / (1 - self.alignment_ema**self.nsa_updates)
            self.z = (self.S @ ((1 - self.leak) * self.z + self.zeta * drive)).clamp(*self.log_bounds)
        scale = self.z.exp()
        beta1, beta2 = self.betas
        for k, (p, g, u) in enumerate(zip(params, grads, directions)):
            state = self.state[p]
            i = self.owner[k]
            if self.elementwise:
                g_hat = torch.where(g * u < 0, g * (1 - self.gamma), g)
            elif C[i] < 0 and U[i] > 0:  # step 6
                correction = (self.gamma * kappa[i] * C[i] / U[i]).to(g.dtype) * u
                g_hat = g - (torch.clamp(correction, -g.abs(), g.abs()) if self.clipped else correction)
            else:
                g_hat = g
            state["step"] += 1
            state["exp_avg"].mul_(beta1).add_(g_hat, alpha=1 - beta1)  # step 8
            state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.mul_(1 - lr * decay)  # step 9
            p.sub_(lr * scale[i].to(p.dtype) * self._direction(state["exp_avg"], state["exp_avg_sq"], state["step"]))
        self.last_alignment, self.last_kappa = a, kappa
        return loss

    def diagnostics(self) -> dict:
        return dict(
            alignment=self.last_alignment.float(),
            kappa=self.last_kappa.float(),
            step_scale=self.z.exp().float(),
            mean_alignment=self.last_alignment.mean().float(),
            skipped_steps=self.skipped,
        )

"""A training loop with Hugging Face Accelerate and ``neat.torch.NGAdam``: gradient
accumulation, gradient clipping, a learning-rate schedule, and ``save_state``/``load_state``.

``NGAdam(model)`` goes through ``accelerator.prepare`` like any ``torch.optim`` optimizer; with
``gradient_accumulation_steps=2`` the wrapped optimizer steps on every second batch only, after
``accelerator.clip_grad_norm_``. ``accelerator.save_state`` writes NG-Adam's ``state_dict``
(moments and game state) with the model, the scheduler and the random states; a fresh process that
builds the same objects and calls ``accelerator.load_state`` continues exactly as if it had never
stopped.

Everything is generated here (a small MLP regressing a random smooth function); it runs in a
second or two on a CPU. Run: ``python examples/accelerate_loop.py``.
"""

from __future__ import annotations

import tempfile

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset

from neat.torch import NGAdam

EPOCHS, CHECKPOINT_EPOCH = 4, 2
ACCUMULATION, MAX_GRAD_NORM = 2, 1.0


def regression_data(count: int = 256) -> TensorDataset:
    """``y = sin(x · w)`` plus a little noise, for 8 inputs and 2 outputs."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(count, 8, generator=generator)
    w = 0.3 * torch.randn(8, 2, generator=generator)
    y = torch.sin(x @ w) + 0.05 * torch.randn(count, 2, generator=generator)
    return TensorDataset(x, y)


def build(accelerator: Accelerator):
    """Model, optimizer, schedule and data loader (the same initial weights every call), prepared."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh())
    model.append(torch.nn.Linear(32, 2))
    optimizer = NGAdam(model, lr=1e-2, weight_decay=1e-4)
    steps = EPOCHS * 256 // (32 * ACCUMULATION)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
    loader = DataLoader(regression_data(), batch_size=32, shuffle=True)
    return accelerator.prepare(model, optimizer, scheduler, loader)


def train(checkpoint_dir: str, first_epoch: int = 0, last_epoch: int = EPOCHS) -> dict:
    """Train from ``first_epoch`` (loading the state saved in ``checkpoint_dir`` when it is not 0)
    to ``last_epoch``, saving the state after epoch ``CHECKPOINT_EPOCH``; the loss of every batch."""
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=ACCUMULATION)
    model, optimizer, scheduler, loader = build(accelerator)
    if first_epoch:
        accelerator.load_state(checkpoint_dir)
    losses = []
    for epoch in range(first_epoch, last_epoch):
        for x, y in loader:
            with accelerator.accumulate(model):
                loss = torch.nn.functional.mse_loss(model(x), y)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
                optimizer.step()  # steps only when the accumulated gradient is complete
                scheduler.step()
                optimizer.zero_grad()
            losses.append(loss.detach())
        if epoch + 1 == CHECKPOINT_EPOCH:
            accelerator.save_state(checkpoint_dir)
    return {
        "losses": torch.stack(losses),
        "weights": {name: p.detach().clone() for name, p in model.named_parameters()},
        "optimizer_steps": int(optimizer.optimizer.game_state.count),  # NG-Adam's own step count
        "players": len(optimizer.optimizer.player_names),
    }


def main() -> dict:
    """An uninterrupted run, then one that resumes from the state saved after ``CHECKPOINT_EPOCH``."""
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        uninterrupted = train(checkpoint_dir)
        resumed = train(checkpoint_dir, first_epoch=CHECKPOINT_EPOCH)
    batches = len(uninterrupted["losses"]) // EPOCHS
    print(f"{uninterrupted['players']} players, {uninterrupted['optimizer_steps']} optimizer steps")
    print("loss per epoch:", [round(float(x), 4) for x in uninterrupted["losses"].view(EPOCHS, batches).mean(1)])
    print("resumed epochs:", [round(float(x), 4) for x in resumed["losses"].view(-1, batches).mean(1)])
    return {"uninterrupted": uninterrupted, "resumed": resumed}


if __name__ == "__main__":
    main()

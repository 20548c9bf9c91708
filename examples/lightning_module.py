"""A ``LightningModule`` trained with ``neat.torch.NGAdam``: ``configure_optimizers`` returns the
optimizer with a per-step ``OneCycleLR`` schedule, the ``Trainer`` clips gradients
(``gradient_clip_val``), and ``fit(ckpt_path=...)`` resumes a run.

``NGAdam(self)`` (the module itself) gives one player per layer. ``OneCycleLR`` cycles the
learning rate and beta1 (``cycle_momentum``); NG-Adam reads both from its param group at every
step. The checkpoint holds NG-Adam's ``state_dict`` (moments and game state) and the schedule's,
so a run resumed from it continues exactly as if it had never stopped. (The checkpoint is taken
at the end of an epoch and the batches come in a fixed order, ``shuffle=False``: Lightning's
checkpoint holds no random-number state, so a shuffling loader would draw another order after
the resume.)

Everything is generated here (a small MLP telling points inside a disc from those outside); it runs in a second or two
on a CPU. Run: ``python examples/lightning_module.py``.
"""

from __future__ import annotations

import logging
import pathlib
import tempfile
import warnings

import lightning
import torch
from torch.utils.data import DataLoader, TensorDataset

from neat.torch import NGAdam

EPOCHS, CHECKPOINT_EPOCH, BATCHES = 4, 2, 8


def disc(count: int = 256) -> TensorDataset:
    """Points in the plane, labelled 1 inside the disc of radius 1.2 and 0 outside."""
    points = torch.randn(count, 2, generator=torch.Generator().manual_seed(1))
    return TensorDataset(points, (points.norm(dim=1) < 1.2).long())


class Classifier(lightning.LightningModule):
    """A 3-layer MLP; its losses per step in ``self.losses``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)
        )
        self.losses: list[torch.Tensor] = []

    def training_step(self, batch, batch_index):
        points, labels = batch
        loss = torch.nn.functional.cross_entropy(self.net(points), labels)
        self.losses.append(loss.detach())
        return loss

    def configure_optimizers(self):
        optimizer = NGAdam(self, lr=3e-2, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-2, total_steps=EPOCHS * BATCHES)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fit(epochs: int, root: str, ckpt_path: str | None = None) -> Classifier:
    """Fit a fresh ``Classifier`` (the same initial weights every call) until ``epochs``, from
    ``ckpt_path`` when given."""
    torch.manual_seed(0)
    model = Classifier()
    trainer = lightning.Trainer(
        max_epochs=epochs,
        gradient_clip_val=1.0,
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(disc(), batch_size=256 // BATCHES, shuffle=False)
    trainer.fit(model, loader, ckpt_path=ckpt_path)
    return model


def main() -> dict:
    """An uninterrupted run, and one stopped after ``CHECKPOINT_EPOCH`` epochs and resumed from
    its checkpoint; their losses per step, final weights and players."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no start-up banners
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")  # a tiny in-memory data set
        uninterrupted = fit(EPOCHS, root)
        first_part = fit(CHECKPOINT_EPOCH, root)
        checkpoint = str(pathlib.Path(root) / f"epoch-{CHECKPOINT_EPOCH}.ckpt")
        first_part.trainer.save_checkpoint(checkpoint)
        resumed = fit(EPOCHS, root, ckpt_path=checkpoint)
    optimizer = resumed.trainer.optimizers[0]
    results = {
        "losses": torch.stack(uninterrupted.losses),
        "resumed_losses": torch.stack(first_part.losses + resumed.losses),
        "weights": dict(uninterrupted.named_parameters()),
        "resumed_weights": dict(resumed.named_parameters()),
        "player_names": optimizer.player_names,
        "param_groups": len(optimizer.param_groups),
    }
    print(f"{len(results['player_names'])} players: {results['player_names']}")
    print("loss per epoch:", [round(float(x), 4) for x in results["losses"].view(EPOCHS, BATCHES).mean(1)])
    print("resumed run:   ", [round(float(x), 4) for x in results["resumed_losses"].view(EPOCHS, BATCHES).mean(1)])
    return results


if __name__ == "__main__":
    main()

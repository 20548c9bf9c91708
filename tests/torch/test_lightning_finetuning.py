"""Lightning's ``BackboneFinetuning`` (progressive unfreezing: ``add_param_group`` mid-run) trains
with NGAdam to the end, and resumes from its checkpoint (where Lightning puts the unfrozen group
back into ``param_groups`` itself)."""

from __future__ import annotations

import warnings

import pytest
import torch

from neat.torch import NGAdam

pl = pytest.importorskip("lightning.pytorch", reason="lightning is not installed (the 'trainers' extra)")

UNFREEZE_AT = 1
EPOCHS = 3
STEPS_PER_EPOCH = 2


class TransferModel(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
        self.head = torch.nn.Linear(8, 2)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.head(self.backbone(x)), y)

    def configure_optimizers(self):
        return NGAdam(self.head, lr=1e-2)  # the backbone joins when BackboneFinetuning unfreezes it

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(1)
        data = torch.utils.data.TensorDataset(
            torch.randn(16, 4, generator=generator), torch.randn(16, 2, generator=generator)
        )
        return torch.utils.data.DataLoader(data, batch_size=16 // STEPS_PER_EPOCH)


def fit(model, epochs, tmp_path, ckpt_path=None):
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        callbacks=[pl.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=UNFREEZE_AT)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "NGAdam got 4 parameters without names", UserWarning)
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(model, ckpt_path=ckpt_path)
    return trainer


def test_backbone_finetuning_runs_to_the_end_and_resumes(tmp_path):
    model = TransferModel()
    initial = [p.detach().clone() for p in model.backbone.parameters()]
    trainer = fit(model, EPOCHS, tmp_path)
    optimizer = trainer.optimizers[0]
    assert len(optimizer.param_groups) == 2 and optimizer.topology.num_tensors == 6
    assert optimizer.players.groups == ((0, 1), (2,), (3,), (4,), (5,))  # the head, then a player per tensor
    steps_after = (EPOCHS - UNFREEZE_AT) * STEPS_PER_EPOCH
    assert optimizer.game_state.tensor_count.tolist() == [EPOCHS * STEPS_PER_EPOCH] * 2 + [steps_after] * 4
    for before, after in zip(initial, model.backbone.parameters()):
        assert not torch.equal(before, after)  # the backbone trained once it joined
    path = tmp_path / "finetuned.ckpt"
    trainer.save_checkpoint(path)

    resumed = fit(TransferModel(), EPOCHS + 1, tmp_path, ckpt_path=path)
    optimizer = resumed.optimizers[0]
    assert optimizer.players.groups == ((0, 1), (2,), (3,), (4,), (5,))
    assert int(optimizer.game_state.count) == (EPOCHS + 1) * STEPS_PER_EPOCH

"""Train a tiny GPT-2 with Hugging Face's ``Trainer`` and ``neat.torch.NGAdam``, both ways the
``Trainer`` takes an optimizer, and resume from a checkpoint.

1. Build the optimizer yourself and hand it over with its scheduler::

       optimizer = NGAdam(decay_groups(model, weight_decay), module=model, lr=lr)
       Trainer(..., optimizers=(optimizer, get_scheduler("linear", optimizer, ...)))

2. Let the ``Trainer`` build it: it makes a decay group and a no-decay group (biases and
   LayerNorm weights) of *unnamed* tensors and calls ``NGAdam(groups, **kwargs)``::

       Trainer(..., optimizer_cls_and_kwargs=(NGAdam, {"module": model, "lr": lr}))

``module=model`` gives NG-Adam one player per layer of the model (the players of
``NGAdam(model)``, chained in the model's order) whatever groups the tensors arrive in; without
it each tensor would be a player of its own. (The keyword is ``module``, not ``model``: the
``Trainer`` takes a ``"model"`` entry out of these kwargs and passes it in place of the groups,
for its LOMO optimizers, which would lose the no-decay group.)

A run interrupted after its checkpoint and resumed with
``trainer.train(resume_from_checkpoint=...)`` gives the losses and weights of the uninterrupted
run: the checkpoint holds NG-Adam's moments and game state (its ``state_dict``).

Everything is generated here (model from a config, random token sequences); it runs in seconds
on a CPU. Run: ``python examples/hf_trainer_gpt2.py``.
"""

from __future__ import annotations

import pathlib
import tempfile

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    get_scheduler,
)
from transformers.utils import logging

from neat.torch import NGAdam

VOCAB, LENGTH = 32, 16
LR, WEIGHT_DECAY = 3e-3, 0.1
STEPS, CHECKPOINT_STEP = 8, 4


def tiny_gpt2() -> GPT2LMHeadModel:
    """A 2-layer GPT-2 with 32-wide embeddings, the same initial weights every call."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=LENGTH,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def counting_sequences(count: int = 128) -> list[dict]:
    """Sequences that count up modulo ``VOCAB`` with a stride of 1, 2 or 3: learnable next tokens."""
    generator = torch.Generator().manual_seed(1)
    starts = torch.randint(VOCAB, (count, 1), generator=generator)
    strides = torch.randint(1, 4, (count, 1), generator=generator)
    tokens = (starts + strides * torch.arange(LENGTH)) % VOCAB
    return [{"input_ids": row, "labels": row} for row in tokens]


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The ``Trainer``'s split for a GPT-2: weight decay on the weight matrices and embeddings,
    none on biases and LayerNorm weights (the 1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class LossLog(TrainerCallback):
    """Keeps the training loss the ``Trainer`` logs at every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def train(route: str, output_dir: str, *, resume: bool = False) -> dict:
    """Train the tiny GPT-2 for ``STEPS`` steps (checkpoint at ``CHECKPOINT_STEP``), or resume
    from that checkpoint; ``route``: ``"optimizers"`` or ``"optimizer_cls_and_kwargs"``."""
    model = tiny_gpt2()
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=STEPS,
        per_device_train_batch_size=16,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        warmup_steps=2,
        lr_scheduler_type="linear",
        logging_steps=1,
        save_steps=CHECKPOINT_STEP,
        save_strategy="steps",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    if route == "optimizers":
        optimizer = NGAdam(decay_groups(model, WEIGHT_DECAY), module=model, lr=LR)
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=STEPS)
        choice = {"optimizers": (optimizer, scheduler)}
    else:
        choice = {"optimizer_cls_and_kwargs": (NGAdam, {"module": model, "lr": LR})}
    log = LossLog()
    trainer = Trainer(model=model, args=args, train_dataset=counting_sequences(), callbacks=[log], **choice)
    trainer.remove_callback(PrinterCallback)  # the example prints its own summary
    checkpoint = str(pathlib.Path(output_dir) / f"checkpoint-{CHECKPOINT_STEP}") if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    optimizer = trainer.optimizer.optimizer  # the NGAdam inside Accelerate's wrapper
    return {
        "losses": log.losses,
        "weights": {name: p.detach().clone() for name, p in model.named_parameters()},
        "group_weight_decays": [group["weight_decay"] for group in optimizer.param_groups],
        "group_tensor_dims": [sorted({p.ndim for p in group["params"]}) for group in optimizer.param_groups],
        "player_names": optimizer.player_names,
        "players": [list(p) for p in optimizer.players.groups],
    }


def main() -> dict:
    """Both routes, each run through and resumed from its checkpoint; plus ``NGAdam(model)``'s
    player names, which ``module=model`` reproduces."""
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    results: dict = {"layer_players": NGAdam(tiny_gpt2()).player_names}
    for route in ("optimizers", "optimizer_cls_and_kwargs"):
        with tempfile.TemporaryDirectory() as output_dir:
            results[route] = train(route, output_dir)
            results[route + "/resumed"] = train(route, output_dir, resume=True)
    for route in ("optimizers", "optimizer_cls_and_kwargs"):
        run, resumed = results[route], results[route + "/resumed"]
        print(f"{route}: {len(run['player_names'])} players, group weight decays {run['group_weight_decays']}")
        print("  losses:", [round(loss, 4) for loss in run["losses"]])
        print(f"  resumed at step {CHECKPOINT_STEP}:", [round(loss, 4) for loss in resumed["losses"]])
    return results


if __name__ == "__main__":
    main()

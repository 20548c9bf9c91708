"""The trainer examples (``examples/hf_trainer_gpt2.py``, ``accelerate_loop.py``,
``lightning_module.py``) run, and show what they claim: layer players, the weight-decay groups
kept, and a run resumed from its checkpoint equal to the uninterrupted run, bit for bit (both in
this process)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
EXTRA = "the `trainers` extra (pip install -e '.[trainers]')"


def run_example(name: str, *packages: str):
    """Import ``examples/<name>.py`` and call its ``main()`` (skipped without ``packages``)."""
    for package in packages:
        pytest.importorskip(package, reason=f"examples/{name}.py needs {EXTRA}")
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.main()


def assert_same_weights(resumed: dict, uninterrupted: dict) -> None:
    assert resumed.keys() == uninterrupted.keys()
    for name, weight in uninterrupted.items():
        assert torch.equal(resumed[name], weight), name


@pytest.fixture(scope="module")
def hf_trainer():
    return run_example("hf_trainer_gpt2", "transformers", "accelerate")


ROUTES = ("optimizers", "optimizer_cls_and_kwargs")


@pytest.mark.parametrize("route", ROUTES)
def test_hf_trainer_keeps_the_no_decay_group(hf_trainer, route):
    example, results = hf_trainer
    run = results[route]
    assert run["group_weight_decays"] == [example.WEIGHT_DECAY, 0.0]
    assert run["group_tensor_dims"] == [[2], [1]]  # matrices and embeddings decay; biases, LayerNorms do not


@pytest.mark.parametrize("route", ROUTES)
def test_hf_trainer_optimizer_has_the_layer_players_of_the_model(hf_trainer, route):
    _, results = hf_trainer
    run = results[route]
    assert run["player_names"] == results["layer_players"]
    assert len(run["player_names"]) == 15  # wte, wpe, 2 × (ln_1, c_attn, attn c_proj, ln_2, c_fc, mlp c_proj), ln_f
    assert sorted(k for player in run["players"] for k in player) == list(range(28))  # every tensor, once


@pytest.mark.parametrize("route", ROUTES)
def test_hf_trainer_resumed_run_equals_the_uninterrupted_one(hf_trainer, route):
    example, results = hf_trainer
    run, resumed = results[route], results[route + "/resumed"]
    assert len(run["losses"]) == example.STEPS and run["losses"][-1] < run["losses"][0]
    assert resumed["losses"] == run["losses"][example.CHECKPOINT_STEP :]
    assert_same_weights(resumed["weights"], run["weights"])


def test_hf_trainer_routes_train_alike(hf_trainer):
    _, results = hf_trainer
    assert results["optimizers"]["losses"] == results["optimizer_cls_and_kwargs"]["losses"]


@pytest.fixture(scope="module")
def accelerate_loop():
    return run_example("accelerate_loop", "accelerate")


def test_accelerate_steps_once_per_accumulated_gradient(accelerate_loop):
    example, results = accelerate_loop
    run = results["uninterrupted"]
    batches = len(run["losses"])
    assert run["optimizer_steps"] == batches // example.ACCUMULATION == 16
    assert run["players"] == 3
    first_epoch, last_epoch = run["losses"].view(example.EPOCHS, -1).mean(1)[[0, -1]]
    assert last_epoch < 0.5 * first_epoch


def test_accelerate_load_state_resumes_the_uninterrupted_run(accelerate_loop):
    example, results = accelerate_loop
    run, resumed = results["uninterrupted"], results["resumed"]
    done = len(run["losses"]) // example.EPOCHS * example.CHECKPOINT_EPOCH
    assert torch.equal(resumed["losses"], run["losses"][done:])
    assert resumed["optimizer_steps"] == run["optimizer_steps"]
    assert_same_weights(resumed["weights"], run["weights"])


@pytest.fixture(scope="module")
def lightning_module():
    return run_example("lightning_module", "lightning")


def test_lightning_optimizer_has_one_player_per_layer(lightning_module):
    _, results = lightning_module
    assert results["player_names"] == ["net.0", "net.2", "net.4"]
    assert results["param_groups"] == 1


def test_lightning_resumed_fit_equals_the_uninterrupted_one(lightning_module):
    example, results = lightning_module
    losses = results["losses"]
    assert len(losses) == example.EPOCHS * example.BATCHES
    assert losses.view(example.EPOCHS, -1).mean(1)[-1] < 0.8 * losses[: example.BATCHES].mean()
    assert torch.equal(results["resumed_losses"], losses)
    assert_same_weights(results["resumed_weights"], results["weights"])

"""A hyperparameter edited between steps the framework's way is honoured or refused, never dropped
(SPEC v2.1): every key of a torch param group, every ``optax.inject_hyperparams`` value."""

from __future__ import annotations

import pytest

from neat import hyperparameters
from neat.conformance.golden import golden_hyperparameters

#: A changed value of every hyperparameter in the schema, by the core's name.
NEW_VALUES = golden_hyperparameters(
    lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, gamma=0.9, mu=0.5, step_bounds=(0.25, 4.0)
)
STEPS = 3


def test_every_schema_hyperparameter_has_a_new_value():
    assert set(NEW_VALUES) == set(hyperparameters.NAMES)


class TestTorchParamGroups:
    torch = pytest.importorskip("torch", reason="torch is an optional framework")
    #: The group keys besides the schema's: honoured per step, or fixed for a run with the kernels.
    OTHER_KEYS = dict(maximize=(True, True), foreach=(True, False), fused=(True, False))

    def _run(self, edit=None, build=None, steps=STEPS):
        """Three steps of a two-layer model; ``edit`` writes a group key after construction,
        ``build`` passes a value to the constructor. Returns the parameters and the optimizer."""
        import neat.torch

        torch = self.torch
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        opt = neat.torch.NGAdam(model, **(build or {}))
        x = torch.randn(8, 4)
        for step in range(steps):
            if edit is not None and step == edit[2]:
                opt.param_groups[0][edit[0]] = edit[1]
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()], opt

    @pytest.mark.parametrize("key", [*hyperparameters.NAMES, *OTHER_KEYS])
    def test_an_edit_is_used_or_refused(self, key):
        honoured = key in hyperparameters.PER_STEP or key == "maximize"
        value = NEW_VALUES[key] if key in NEW_VALUES else self.OTHER_KEYS[key][0]
        if honoured:  # edited before the first step: the run of an optimizer built with it
            edited, _ = self._run(edit=(key, value, 0))
            built, _ = self._run(build={key: value})
            default, _ = self._run()
            assert all(self.torch.equal(a, b) for a, b in zip(edited, built))
            assert not all(self.torch.equal(a, b) for a, b in zip(edited, default))
            return
        before, opt = self._run(steps=1)
        state = {k: v.clone() for k, v in opt.state_dict()["neat"].items() if isinstance(v, self.torch.Tensor)}
        opt.param_groups[0][key] = value
        with pytest.raises(ValueError, match=rf"^{key} is fixed for a run .*build a new optimizer"):
            opt.step()
        params = [p.detach() for group in opt.param_groups for p in group["params"]]
        assert all(self.torch.equal(a, b) for a, b in zip(before, params))
        after = opt.state_dict()["neat"]
        assert all(self.torch.equal(v, after[k]) for k, v in state.items())


class TestOptaxInjectHyperparams:
    optax = pytest.importorskip("optax", reason="optax is an optional framework")
    jnp = pytest.importorskip("jax.numpy", reason="jax is an optional framework")

    def _run(self, name=None, value=None, edit=True):
        import neat.optax

        jnp, optax = self.jnp, self.optax
        build = {"learning_rate": 1e-2, **({} if edit or name is None else {name: value})}
        transformation = optax.inject_hyperparams(neat.optax.ng_adam)(**build)
        params = {"a": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2)}, "b": {"w": jnp.ones(2)}}
        state = transformation.init(params)
        if edit and name is not None:
            state.hyperparams[name] = jnp.asarray(value, state.hyperparams[name].dtype)
        for step in range(STEPS):
            sign = (-1.0) ** step  # gradients that turn against the last update: NGE and NSA both act
            grads = {"a": {"w": sign * (params["a"]["w"] - 0.3)}, "b": {"w": sign * params["b"]["w"] + 0.1}}
            updates, state = transformation.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return [params["a"]["w"], params["b"]["w"]]

    @pytest.mark.parametrize(
        "name", ["learning_rate", "b1", "b2", "eps", "weight_decay", "gamma", "zeta", "mu", "leak"]
    )
    def test_an_injected_value_edited_in_the_state_is_used(self, name):
        core = hyperparameters.core_values("optax", {name: 0})  # the schema knows every injected name
        assert len(core) == 1 or name in ("b1", "b2")
        value = {"learning_rate": 3e-2, "b1": 0.8, "b2": 0.99, "eps": 1e-3}.get(name, NEW_VALUES.get(name))
        edited, built, default = self._run(name, value), self._run(name, value, edit=False), self._run()
        assert all(self.jnp.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(edited, built))
        assert not all(self.jnp.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(edited, default))

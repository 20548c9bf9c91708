"""``import neat.keras`` without ``KERAS_BACKEND`` and without TensorFlow (Keras' default backend).

Each case runs in a fresh interpreter whose ``KERAS_HOME`` has no ``keras.json``
(so Keras would load TensorFlow) and where the listed modules cannot be imported
(``sys.modules[name] = None``, which makes ``find_spec`` and ``import`` fail as
for a missing package, even where TensorFlow is installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, sys, warnings
sys.modules.update(dict.fromkeys({blocked!r}))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        import neat.keras
    except ImportError as error:
        print(json.dumps({{"error": str(error)}}))
        raise SystemExit(0)
import keras
print(json.dumps({{"backend": keras.config.backend(), "warnings": [str(w.message) for w in caught
                                                                  if issubclass(w.category, UserWarning)]}}))
"""


def import_neat_keras(tmp_path, blocked) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["KERAS_HOME"] = os.fspath(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=tuple(blocked))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def installed(*modules) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(
    not installed("keras") or not (installed("jax") or installed("torch")), reason="needs keras and one of jax, torch"
)
def test_picks_an_installed_backend_and_says_which(tmp_path):
    expected = "jax" if installed("jax") else "torch"
    outcome = import_neat_keras(tmp_path, ["tensorflow"])
    assert outcome.get("backend") == expected, outcome
    assert any(
        f"KERAS_BACKEND={expected!r}" in message and "'tensorflow'" in message for message in outcome["warnings"]
    ), outcome


@pytest.mark.skipif(not installed("keras", "torch"), reason="needs keras and torch")
def test_falls_back_to_torch_without_jax(tmp_path):
    outcome = import_neat_keras(tmp_path, ["tensorflow", "jax"])
    assert outcome.get("backend") == "torch", outcome


@pytest.mark.skipif(not installed("keras"), reason="needs keras")
def test_without_any_backend_the_error_names_backends_and_extras(tmp_path):
    outcome = import_neat_keras(tmp_path, ["tensorflow", "jax", "torch"])
    message = outcome.get("error", "")
    assert "No module named 'tensorflow'" not in message, outcome
    for part in ("'tensorflow'", "('jax', 'torch')", "neat-nash[keras,jax]", "neat-nash[keras,torch]", "KERAS_BACKEND"):
        assert part in message, (part, message)


@pytest.mark.skipif(not installed("keras", "torch"), reason="needs keras and torch")
def test_a_configured_installed_backend_is_kept(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    outcome = import_neat_keras(tmp_path, ["tensorflow"])
    assert outcome == {"backend": "torch", "warnings": []}, outcome

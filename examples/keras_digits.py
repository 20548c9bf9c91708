"""Keras: classify scikit-learn's 8×8 digits with NG-Adam (one line changed from AdamW).

    KERAS_BACKEND=jax python examples/keras_digits.py --epochs 30

Prints the test accuracy and NEAT's per-layer diagnostics of the last epoch.
"""

from __future__ import annotations

import argparse

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import neat.keras


def digits(seed: int):
    """Train/test split of the 1797 digits, pixels scaled to [0, 1]."""
    data = load_digits()
    x = (data.data / 16.0).astype("float32")
    return train_test_split(x, data.target.astype("int32"), test_size=0.25, random_state=seed, stratify=data.target)


def build_model() -> keras.Model:
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(64, activation="relu", name="hidden_1")(inputs)
    block = keras.layers.Dense(64, activation="relu", name="hidden_2")(hidden)
    merged = keras.layers.Add(name="residual")([hidden, block])
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(merged))


def main(epochs: int = 30, seed: int = 0, verbose: int = 0) -> dict:
    keras.utils.set_random_seed(seed)
    x_train, x_test, y_train, y_test = digits(seed)
    model = build_model()
    model.compile(
        optimizer=neat.keras.NGAdam(learning_rate=1e-3, weight_decay=1e-4, model=model),  # was AdamW(...)
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=epochs, verbose=verbose, callbacks=[neat.keras.NEATDiagnostics()]
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    last = {key: values[-1] for key, values in history.history.items()}
    return {"test_accuracy": float(accuracy), **last}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = main(args.epochs, args.seed)
    print(f"backend {keras.config.backend()}: test accuracy {results.pop('test_accuracy'):.4f}")
    for key, value in results.items():
        print(f"  {key:32s} {value: .4f}")

"""The Keras callback of the front end: ``neat.keras.NEATDiagnostics`` puts NG-Adam's diagnostics
into ``logs`` once per epoch and, with ``log_dir``, writes them as TensorBoard scalars through
``tensorboard``'s own event writer (no TensorFlow needed).
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np

from neat.keras.optimizer import NGAdam


class NEATDiagnostics(keras.callbacks.Callback):
    """Adds NG-Adam's diagnostics to ``logs`` at the end of each epoch, as floats:

    ``neat_mean_alignment``, ``neat_skipped_steps`` and, per player,
    ``neat_step_scale/<player>`` (λ), ``neat_conflict/<player>`` (κ), ``neat_alignment/<player>`` (a).
    With ``log_dir`` they are also written as TensorBoard scalars (needs the
    ``tensorboard`` package, not TensorFlow; without it a warning says so and only ``logs`` is filled).
    Reading them is the only host transfer, once per epoch.
    """

    __module__ = "neat.keras"  # its public home

    def __init__(self, log_dir=None):
        super().__init__()
        self._writer = _event_writer(log_dir) if log_dir is not None else None

    def on_epoch_end(self, epoch, logs=None):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        if not isinstance(optimizer, NGAdam):
            raise TypeError(
                f"NEATDiagnostics needs a model compiled with neat.keras.NGAdam, got {type(optimizer).__qualname__}"
            )
        values = diagnostics_as_floats(optimizer)
        if logs is not None:
            logs.update(values)
        if self._writer is not None:
            self._writer(values, epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


def diagnostics_as_floats(optimizer: NGAdam) -> dict[str, float]:
    """The optimizer's diagnostics as ``{log key: float}`` (this reads them to the host)."""
    info = optimizer.diagnostics()

    def host(x):
        return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)

    values = {
        "neat_mean_alignment": float(host(info["mean_alignment"])),
        "neat_skipped_steps": float(host(info["skipped_steps"])),
    }
    for key, label in (("step_scale", "step_scale"), ("kappa", "conflict"), ("alignment", "alignment")):
        for name, value in zip(info["player_names"], host(info[key])):
            values[f"neat_{label}/{name}"] = float(value)
    return values


class _TensorBoardScalars:
    """Scalar summaries through ``tensorboard``'s own event writer (no TensorFlow needed)."""

    def __init__(self, log_dir):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._file = EventFileWriter(str(log_dir))

    def __call__(self, values: dict, step: int) -> None:
        summary = self._summary(
            value=[self._summary.Value(tag=tag, simple_value=value) for tag, value in values.items()]
        )
        self._file.add_event(self._event(wall_time=time.time(), step=int(step), summary=summary))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _event_writer(log_dir):
    try:
        return _TensorBoardScalars(log_dir)
    except ImportError as error:
        warnings.warn(
            f"NEATDiagnostics: not writing TensorBoard summaries to {log_dir!r} because the "
            f"'tensorboard' package is missing ({error}); `pip install tensorboard` to enable them. "
            "The diagnostics still go into `logs`.",
            stacklevel=3,
        )
        return None

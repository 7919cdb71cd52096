"""What ``AdaptiveTemperature`` checks and reads besides the task: candidates, norms, order.

* :func:`candidate_moments`: the mean ``ē`` and second moment ``C`` of the
  candidates' vectors over a ``tf.data.Dataset`` (what
  ``tfrs.metrics.FactorizedTopK`` takes), for the table-free refresh;
* :func:`check_unit_norms`: Adap-τ's scores are cosines, so the towers must
  end in an L2 normalisation; an error quoting the norms seen otherwise;
* :func:`log_writers_before`: log writers (``CSVLogger``, ``TensorBoard``,
  ``CSVHistory``, ``AnalysisTensorBoard``) placed before the callback in ``model.fit``'s list, which
  write an epoch's logs before the callback adds τ to them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

#: Largest ``|norm - 1|`` (median over the rows) accepted as a unit vector.
NORM_TOLERANCE = 1e-2


def candidate_moments(
    candidates: tf.data.Dataset, candidate_model: Callable[..., Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ē``, ``C`` and the norms of every candidate vector.

    Args:
        candidates: a batched dataset of ``[b, d]`` candidate embeddings, of
            ``(ids, [b, d] embeddings)`` tuples, or (with ``candidate_model``) of
            the candidate tower's raw inputs (e.g. ``movies.batch(128)``).
        candidate_model: the candidate tower; ``None`` when the dataset holds
            embeddings.

    Returns:
        ``(mean [d], second_moment [d, d], norms [m])`` float64:
        ``ē = mean_i e_i``, ``C = mean_i e_i e_iᵀ`` over the ``m`` candidates.

    Raises:
        ValueError: an empty dataset, or elements that are not ``[b, d]``
            float vectors (quoted).

    Example:
        >>> mean, second, norms = candidate_moments(
        ...     tf.data.Dataset.from_tensor_slices(tf.eye(3)).batch(2))
        >>> mean.tolist(), norms.tolist()
        ([0.333..., 0.333..., 0.333...], [1.0, 1.0, 1.0])
    """
    total = outer = None
    norms = []
    for element in candidates:
        if candidate_model is not None:
            vectors = candidate_model(element, training=False)
        else:
            vectors = element[-1] if isinstance(element, tuple) else element
        vectors = tf.convert_to_tensor(vectors)
        if not vectors.dtype.is_floating or vectors.shape.rank != 2:
            hint = "" if candidate_model is not None else (
                "; pass candidate_model= when the dataset holds the tower's raw inputs")
            raise ValueError(
                f"candidates must give [batch, d] float embeddings, got {vectors.dtype.name} "
                f"of shape {vectors.shape}{hint}"
            )
        array = vectors.numpy().astype(np.float64)
        total = array.sum(axis=0) if total is None else total + array.sum(axis=0)
        outer = array.T @ array if outer is None else outer + array.T @ array
        norms.append(np.linalg.norm(array, axis=1))
    if total is None:
        raise ValueError("candidates is an empty dataset")
    norms = np.concatenate(norms)
    return total / norms.size, outer / norms.size, norms


def check_unit_norms(name: str, norms: np.ndarray, tolerance: float = NORM_TOLERANCE) -> None:
    """Raises when vectors are not unit length (median ``|norm - 1|`` above ``tolerance``).

    Args:
        name: what the vectors are (``"query"``, ``"candidate"``, ...).
        norms: ``[N]`` their L2 norms.
        tolerance: accepted median distance to 1.

    Raises:
        ValueError: naming the min / median / max norm seen.

    Example:
        >>> check_unit_norms("query", np.array([1.0, 1.0, 0.0]))  # one zero row is fine
    """
    norms = np.asarray(norms, np.float64)
    if norms.size == 0 or abs(float(np.median(norms)) - 1.0) <= tolerance:
        return
    raise ValueError(
        f"Adap-τ scores are cosines, but the {name} vectors are not unit length: norms "
        f"min {norms.min():.4g}, median {np.median(norms):.4g}, max {norms.max():.4g} over "
        f"{norms.size} rows. End the {name} tower with adaptau_tf.layers.L2Normalization()."
    )


def log_writers_before(callback: tf.keras.callbacks.Callback) -> list[str]:
    """Names of the log-writing callbacks that come before ``callback`` in ``fit``'s list.

    Best effort: Keras gives a callback no handle on its list, so this looks
    for the ``CallbackList`` that is calling ``callback`` up the call stack
    (call it from a hook such as ``on_train_begin``). Returns ``[]`` when none
    is found.

    Example:
        >>> def on_train_begin(self, logs=None):
        ...     late = log_writers_before(self)  # e.g. ['CSVLogger']
    """
    from adaptau_tf.callbacks.analysis_tensorboard import AnalysisTensorBoard
    from adaptau_tf.callbacks.csv_history import CSVHistory

    writers = (tf.keras.callbacks.CSVLogger, tf.keras.callbacks.TensorBoard, CSVHistory,
               AnalysisTensorBoard)
    frame = inspect.currentframe()
    try:
        for _ in range(12):
            frame = frame.f_back if frame is not None else None
            if frame is None:
                return []
            owner = frame.f_locals.get("self")
            if isinstance(owner, tf.keras.callbacks.CallbackList):
                listed = list(owner.callbacks)
                index = next((i for i, c in enumerate(listed) if c is callback), None)
                if index is None:
                    return []
                return [type(c).__name__ for c in listed[:index] if isinstance(c, writers)]
        return []
    finally:
        del frame

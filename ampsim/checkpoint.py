"""Loading checkpoints: ``torch.load(weights_only=True)`` with one error class naming the file.

Rule: a checkpoint is a ``dict`` saved with :func:`ampsim.fileio.save_torch`. Whatever
is wrong with the file -- missing, a directory, empty, truncated, flipped bytes, a
pickle of something else, a foreign object that ``weights_only`` refuses -- the
caller gets :class:`~ampsim.engine.errors.CheckpointError` whose message names the
file and says what was found, never torch's traceback (which advises
``weights_only=False``, unsafe for a file one did not write).

    ckpt = load_checkpoint("runs/x/checkpoint.pt", format="ampsim.train", required=("model", "epoch"))
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional, Union

from .engine.errors import CheckpointError

__all__ = ["CheckpointError", "load_checkpoint"]


def load_checkpoint(
    path: Union[str, "os.PathLike[str]"],
    required: Optional[Iterable[str]] = None,
    map_location: Any = "cpu",
    format: Optional[str] = None,
) -> dict:
    """The ``dict`` stored in ``path`` (tensors on ``map_location``); :class:`CheckpointError` otherwise.

    ``required``: keys the dict must hold; ``format``: the value its ``"format"`` key must have
    (a checkpoint of another kind is refused by name).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    import torch

    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # zip, pickle, unpickler and decoding errors all mean "corrupt"
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not written by ampsim: {_reason(exc)})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not an ampsim checkpoint (it holds a {type(obj).__name__}, not a dict)")
    if format is not None and obj.get("format") != format:
        raise CheckpointError(
            f"{path}: not a {format} checkpoint (its format is {obj.get('format')!r})"
        )
    if required is not None:
        missing = [k for k in required if k not in obj]
        if missing:
            raise CheckpointError(f"{path}: not an ampsim checkpoint of this kind (it lacks {missing})")
    return obj


def _reason(exc: BaseException) -> str:
    """A short cause without torch's advice to load unsafely."""
    text = " ".join(str(exc).split())
    if "weights_only" in text or "Weights only load failed" in text or len(text) > 120 or not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}"

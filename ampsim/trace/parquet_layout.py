"""The Parquet trace layout both sides share: the header's metadata key, the row types, the
column names and the schema, and the one place pyarrow is imported (:mod:`ampsim.trace.columnar`
describes the layout)."""
from __future__ import annotations

import json
import os
from typing import Union

from .records import DELIVER, DROP, SEND, trace_format

__all__ = ["HEADER_KEY", "COLUMNS", "T_SEND", "T_DELIVER", "T_DROP", "T_STATE", "T_END", "is_parquet"]

HEADER_KEY = b"ampsim.header"
T_SEND, T_DELIVER, T_DROP, T_STATE, T_END = 0, 1, 2, 3, 4
_EVENTS = {SEND: T_SEND, DELIVER: T_DELIVER, DROP: T_DROP}
_NAMES = {v: k for k, v in _EVENTS.items()}
COLUMNS = ("type", "msg_id", "cause_id", "src", "dst", "t_send", "t_deliver", "delay", "kind", "payload",
           "reason", "text")


def is_parquet(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` names a Parquet trace (by its suffix, ``.parquet`` or ``.pq``: :func:`trace_format`)."""
    return trace_format(path) == "parquet"


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "Parquet traces need pyarrow: pip install 'ampsim[parquet]' (or use a .jsonl trace)"
        ) from None
    return pa, pq


def _schema(pa, header: dict):
    dict_str = pa.dictionary(pa.int32(), pa.string())
    fields = [
        ("type", pa.int8()), ("msg_id", pa.int64()), ("cause_id", pa.int64()), ("src", pa.int32()),
        ("dst", pa.int32()), ("t_send", pa.float64()), ("t_deliver", pa.float64()), ("delay", pa.float64()),
        ("kind", dict_str), ("payload", dict_str), ("reason", dict_str), ("text", pa.string()),
    ]
    meta = {HEADER_KEY: json.dumps(header, separators=(",", ":"), allow_nan=False).encode()}
    return pa.schema(fields, metadata=meta)

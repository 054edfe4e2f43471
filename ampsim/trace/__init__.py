"""Traces: records, tracers, files (JSONL or Parquet), causality and ShiViz export, replay.

Heavy or optional parts (replay, the Parquet format, the DataFrame view) load on first use.
"""
from .causality import (
    SHIVIZ_PARSER,
    concurrent,
    happens_before,
    parse_shiviz,
    shiviz_edges,
    shiviz_file,
    shiviz_hidden,
    to_shiviz,
    vector_clocks,
    write_shiviz,
)
from .io import Trace, load_trace, save_trace
from .records import EndRecord, MessageRecord, StateRecord
from .tracers import JSONLTracer, ListTracer, TeeTracer, Tracer

_LAZY = {
    "replay": "ampsim.trace.replay",
    "export_trace": "ampsim.trace.export",
    "ParquetTracer": "ampsim.trace.columnar",
    "load_parquet": "ampsim.trace.columnar",
    "save_parquet": "ampsim.trace.columnar",
    "to_dataframe": "ampsim.trace.columnar",
    "to_arrow": "ampsim.trace.columnar",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        # importing ampsim.trace.replay binds the submodule under the name "replay": the function wins
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ampsim.trace' has no attribute {name!r}")


__all__ = [
    "EndRecord",
    "JSONLTracer",
    "ListTracer",
    "MessageRecord",
    "ParquetTracer",
    "SHIVIZ_PARSER",
    "StateRecord",
    "TeeTracer",
    "Trace",
    "Tracer",
    "concurrent",
    "export_trace",
    "happens_before",
    "load_parquet",
    "load_trace",
    "parse_shiviz",
    "replay",
    "save_parquet",
    "save_trace",
    "shiviz_edges",
    "shiviz_file",
    "shiviz_hidden",
    "to_arrow",
    "to_dataframe",
    "to_shiviz",
    "vector_clocks",
    "write_shiviz",
]

"""ampsim: Asynchronous Message Passing (Faber & Wattenhofer, arXiv 2205.12245) on SimPy.

The public API, one name per line. See docs/design.md for the semantics.
"""
from ._version import __version__

from .engine.delays import Constant, Custom, FromTrace, Uniform, get_delay
from .engine.errors import (
    AmpsimError,
    AssumptionError,
    DelayError,
    GraphError,
    ReplayMismatch,
    TraceFormatError,
)
from .engine.messages import START, Message, NodeView
from .engine.rule import NodeRule
from .engine.simulation import RunResult, Simulation
from .graphs import Graph, as_graph, parse_graph_spec
from . import pyg as _pyg  # noqa: F401 -- registers the PyG Data / Batch reader of as_graph (no PyG import)
from .protocols import Flooding, get_rule
from .trace.io import Trace, load_trace, register_format as _register_format, save_trace
from .trace.records import EndRecord, MessageRecord, StateRecord, PARQUET_SUFFIXES as _PARQUET_SUFFIXES
from .trace.replay import replay
from . import trace as _trace

_trace.replay = replay  # the submodule import bound ampsim.trace.replay to the module; the package exports the function
from .trace.tracers import JSONLTracer, ListTracer, TeeTracer, Tracer



def _parquet(name: str):
    """``ampsim.trace.columnar.<name>``, imported on first call: pyarrow and NumPy load only for a Parquet file."""
    def call(*args, **kwargs):
        from .trace import columnar

        return getattr(columnar, name)(*args, **kwargs)

    call.__name__ = name
    return call


# the core reads and writes Parquet traces through this registration, never by importing the adapter
_register_format("parquet", _PARQUET_SUFFIXES, load=_parquet("load_parquet"), save=_parquet("save_parquet"))

_LAZY = {
    # matplotlib is imported only when a picture is asked for
    "plot_spacetime": "ampsim.viz",
    "plot_graph_state": "ampsim.viz",
    "animate": "ampsim.viz",
    "plot_interactive": "ampsim.viz.interactive",
    "vector_clocks": "ampsim.trace.causality",
    "to_shiviz": "ampsim.trace.causality",
    "write_shiviz": "ampsim.trace.causality",
    "shiviz_file": "ampsim.trace.causality",
    "export_trace": "ampsim.trace.export",
    # pyarrow / pandas are imported only when a Parquet trace or a DataFrame is asked for
    "ParquetTracer": "ampsim.trace.columnar",
    # torch_geometric is imported only when converting
    "from_pyg": "ampsim.pyg",
    "to_pyg": "ampsim.pyg",
    "to_dataframe": "ampsim.trace.columnar",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ampsim' has no attribute {name!r}")


__all__ = [
    "AmpsimError",
    "AssumptionError",
    "Constant",
    "Custom",
    "DelayError",
    "EndRecord",
    "Flooding",
    "FromTrace",
    "Graph",
    "GraphError",
    "JSONLTracer",
    "ListTracer",
    "Message",
    "MessageRecord",
    "ParquetTracer",
    "NodeRule",
    "NodeView",
    "ReplayMismatch",
    "RunResult",
    "START",
    "Simulation",
    "StateRecord",
    "TeeTracer",
    "Trace",
    "TraceFormatError",
    "Tracer",
    "Uniform",
    "animate",
    "as_graph",
    "export_trace",
    "from_pyg",
    "get_delay",
    "get_rule",
    "load_trace",
    "parse_graph_spec",
    "plot_graph_state",
    "plot_interactive",
    "plot_spacetime",
    "replay",
    "save_trace",
    "shiviz_file",
    "to_dataframe",
    "to_pyg",
    "to_shiviz",
    "vector_clocks",
    "write_shiviz",
]

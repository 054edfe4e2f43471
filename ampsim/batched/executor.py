"""BatchedExecutor: the engine's AMP runs (Section 3) at tensor speed, same deliveries, same states.

Every processed delivery applies the cell to one (state, message) row. The engine
does this one row at a time; here the rows of many deliveries go through
:meth:`AMPCell.step` together. Two drivers decide which rows form one batch:

* **levels** (emission ``"always"``: RNN, GRU, LSTM without gate; emission ``"counted"``:
  the aggregating cells, :mod:`ampsim.cells.aggregate`; see :mod:`ampsim.cells.protocol`).
  The schedule does not depend on values, so :mod:`ampsim.batched.planner` computes it
  once per (graph, runs, delays, loss, budget, count rule) -- cached by a hash of those -- and
  :mod:`ampsim.batched.program` compiles it into levels; one level of all runs of all
  graphs of a minibatch is one batch. Cells with a hand-written kernel run it
  (:mod:`ampsim.batched.levels`); any other cell runs its own ``step`` on the same batches
  (:mod:`ampsim.batched.planned`).
* **lock-step** (ACT/Iter halting, the learned gate: the schedule depends on values;
  :mod:`ampsim.batched.lockstep`). All runs advance together one window of their event
  queues at a time.

This module is the façade: argument checks, the program and start-class caches, the
choice of driver, and the :class:`~ampsim.batched.unrolled.Unrolled` result
(:mod:`ampsim.batched.unrolled`) that readouts read.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .. import validate as V
from ..cells.execute import RunSpec, check_runs, graph_of
from ..cells.protocol import Cell, NodeInputs, emission_of
from ..cells.noise import noise_keys
from ..data.graphdata import GraphData
from ..engine.delays import DelayModel, get_delay
from ..graphs import Graph
from .fused import fused_for, resolve
from .kernels import kernel_for
from .levels import _forward_segments, _LevelUnroll, _Segments, _cut, segment_plan
from .lockstep import _forward_levels, _LockStepDriver, _Unroll
from .planned import ProgramDriver
from .settled import settle_runs, settles
from .planner import TIES, PlanCache, _graph_memo, delay_key, engine_ties, neighbour_hash, seeded, start_index
from .program import _compile, _deduped, _init_classes, _Program, _pruned, _start_classes
from .unrolled import Unrolled

__all__ = ["BatchedExecutor", "Unrolled", "MODES", "needs_lockstep", "retain_freed_memory"]

MODES = ("auto", "levels", "lockstep")


def retain_freed_memory(limit: int = 1 << 30) -> bool:
    """Linux/glibc only: serve allocations up to ``limit`` bytes from the heap and keep freed memory.

    Every training step allocates and frees the same large buffers (state buffer,
    gradient buffers: 100+ MB on PROTEINS). glibc hands blocks over 32 MB back to the
    kernel on ``free``, so each step pays page faults on fresh memory again; this
    alone cost about 40% of a PROTEINS step (measured in docs/batched.md). Call it once
    at the start of a training *process* (it changes ``mallopt`` for the whole process;
    the library never calls it on import). Returns False where it does not apply.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    limit = max(0, min(int(limit), (1 << 31) - 1))
    return bool(mallopt(-3, limit)) and bool(mallopt(-1, (1 << 31) - 1))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


def needs_lockstep(cell: Cell) -> bool:
    """True when the schedule depends on values (emission ``"learned"``: ACT/Iter halting, a learned gate)."""
    return emission_of(cell) == "learned"


def _entries(name: str, value: Union[Tensor, Sequence[int]], count: int) -> np.ndarray:
    """``value`` as an int64 array of entry indices in ``0..count-1`` (or one clear error)."""
    a = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(list(value))
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D sequence of integer entries, got {V.show(value)}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= count):
        raise ValueError(f"{name}: entries must be in 0..{count - 1} (one per graph, run and node), "
                         f"got {int(a.min())}..{int(a.max())}")
    return a


def _flat_keep(graphs: Sequence[Union[GraphData, Graph]], runs_per_graph: Sequence[Sequence[RunSpec]],
               keep: Sequence[Union[Tensor, Sequence[int]]]) -> tuple[Tensor, list[int]]:
    """Per-graph entries ``run * n + node`` -> one CPU tensor of :meth:`BatchedExecutor.unroll` entries, and the
    count per graph (one clear error for a bad list)."""
    if len(keep) != len(graphs):
        raise ValueError(f"{len(graphs)} graphs but {len(keep)} keep lists")
    entries, off = [], 0
    for g, (graph, runs, k) in enumerate(zip(graphs, runs_per_graph, keep)):
        count = len(runs) * _graph(graph).num_nodes
        _entries(f"keep[{g}]", k, count)
        entries.append(torch.as_tensor(k, dtype=torch.long).cpu().reshape(-1) + off)
        off += count
    flat = torch.cat(entries) if entries else torch.zeros(0, dtype=torch.long)
    return flat, [len(e) for e in entries]


def _graph(g: Union[GraphData, Graph]) -> Graph:
    return g if isinstance(g, Graph) else graph_of(g)


def _graph_hash(data: Union[GraphData, Graph]) -> str:
    """SHA-256 of a graph's size and neighbour lists, memoised on ``GraphData.meta`` with the engine
    graph it hashes (:func:`graph_of` builds a new one when the edges change)."""
    if isinstance(data, Graph):
        return neighbour_hash(data)
    g = graph_of(data)
    memo = data.meta.get("_batched_hash")
    if memo is None or memo[0] is not g:
        memo = data.meta["_batched_hash"] = (g, neighbour_hash(g))
    return memo[1]


class BatchedExecutor:
    """The batched executor: ``execute`` (one graph, the :class:`Executor` protocol), ``execute_many``
    (a minibatch), ``unroll`` (the low-level call that returns :class:`Unrolled`).

    ``mode``: ``"auto"`` (levels for always-emit cells, lock-step otherwise), ``"levels"``
    or ``"lockstep"``. ``ties``: the same-instant order, ``None`` = the installed engine's.
    Plans are cached (``plan_cache``: per graph; compiled batches: ``program_cache`` entries).
    ``dedup``: the levels driver computes each level's deliveries with equal inputs once
    (equal start states from equal feature rows, equal start messages; :func:`_dedup`);
    ``False`` computes every row (the same values and gradients, slower).
    ``fused``: the levels driver runs the compiled level loop (:mod:`ampsim.batched.fused`): ``None``
    (the default; the environment variable ``AMPSIM_FUSED`` = 0 / 1 overrides it) when it can be built
    and runs the cell (RNN, GRU, LSTM in float32 or float64 on the CPU), else the eager kernels;
    ``True`` requires it, ``False`` runs the eager kernels. ``last_path`` says which ran last:
    ``"fused"``, ``"eager"``, ``"planned"`` (a planned cell without a kernel runs its own ``step``
    on the program's levels, :mod:`ampsim.batched.planned`), ``"settled"`` or ``"lockstep"``.
    ``settled``: an order-free counted cell (the aggregating cells) is computed wave by wave from
    the set of delivered copies (:mod:`ampsim.batched.settled`: the same final states up to float
    rounding, K aggregation passes instead of one batch per level): ``True`` (the default) where it
    applies (not with ``history``, ``record`` or ``mode="lockstep"``), ``False`` runs the cell's
    ``step`` on the level program (the reference path).
    """

    def __init__(self, mode: str = "auto", ties: Optional[str] = None, plan_cache: Optional[PlanCache] = None,
                 program_cache: int = 8, record: bool = False, segment_rows: Optional[int] = None,
                 dedup: bool = True, fused: Optional[bool] = None, settled: bool = True) -> None:
        self.mode = V.choice("mode", mode, MODES)
        self.settled = V.boolean("settled", settled)
        self.ties = None if ties is None else V.choice("ties", ties, TIES)
        if plan_cache is not None and not isinstance(plan_cache, PlanCache):
            raise V.ArgumentError(f"plan_cache must be a PlanCache or None, got {V.show(plan_cache)}")
        self.plans = plan_cache if plan_cache is not None else PlanCache()
        self.program_cache = V.nonneg_int("program_cache", program_cache)
        self._programs: OrderedDict[tuple, _Program] = OrderedDict()
        self.record = V.boolean("record", record)
        if segment_rows is not None and not (V._is_int(segment_rows) and segment_rows >= 0):
            raise V.ArgumentError(f"segment_rows must be None (auto), 0 (never cut) or a positive int, "
                                  f"got {V.show(segment_rows)}")
        self.segment_rows = None if segment_rows is None else int(segment_rows)
        self.dedup = V.boolean("dedup", dedup)
        self.fused = None if fused is None else V.boolean("fused", fused)
        self.last_path: Optional[str] = None
        self._classes: OrderedDict[tuple, tuple] = OrderedDict()
        self.last: Optional[Unrolled] = None

    # ------------------------------------------------------------- protocol
    def execute(self, cell: Cell, graph: GraphData, runs: Sequence[RunSpec], budget: int,
                delay: Union[str, DelayModel] = "constant", fifo: bool = False, loss: float = 0.0) -> Tensor:
        """``(len(runs), n, state_size)`` final packed states, equal to :class:`EngineExecutor`'s."""
        return self.execute_many(cell, [graph], [runs], budget, delay, fifo, loss=loss)[0]

    def execute_many(self, cell: Cell, graphs: Sequence[GraphData], runs_per_graph: Sequence[Sequence[RunSpec]],
                     budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
                     keep: Optional[Sequence[Union[Tensor, Sequence[int]]]] = None, loss: float = 0.0) -> list[Tensor]:
        """One ``(runs_g, n_g, S)`` tensor per graph; all runs of all graphs go through the cell together.

        ``loss``: the engine's message loss. The runs of one graph share their start states,
        so they must share ``RunSpec.noise_seed`` (the cell's noise keys are part of the start state).

        ``keep[g]``: the entries ``run * n_g + node`` of graph g that the caller reads. Then only
        the deliveries they depend on are computed (:meth:`unroll`) and graph g's tensor is
        ``(len(keep[g]), S)``: those entries' final states, in the order given.
        """
        if len(graphs) != len(runs_per_graph):
            raise ValueError(f"{len(graphs)} graphs but {len(runs_per_graph)} run lists")
        starts, seeds, messages, noise = [], [], [], []
        for g, runs in enumerate(runs_per_graph):
            starts.append(check_runs(graphs[g], runs, cell.msg_size, "runs" if len(graphs) == 1 else f"runs[{g}]"))
            kinds = {r.noise_seed for r in runs}
            if len(kinds) > 1:
                raise ValueError(f"graph {g}: its runs have noise seeds {sorted(kinds, key=str)}; the runs of one "
                                 "graph share their start states and must share one noise_seed")
            noise.append(kinds.pop() if kinds else None)
            seeds.append([int(r.seed) for r in runs])
            messages.extend(r.messages for r in runs)
        budget = V.positive_int("budget", budget)  # after the runs, as EngineExecutor: the same error first
        ref = next(cell.parameters())
        msgs = torch.cat(messages).to(ref.device) if messages else ref.new_zeros((0, cell.msg_size))
        widths = [[m.shape[0] for m in (r.messages for r in runs)] for runs in runs_per_graph]
        if keep is None:
            return self.unroll(cell, graphs, starts, seeds, msgs, budget, delay, fifo, message_rows=widths,
                               loss=loss, noise_seeds=noise).per_graph()
        flat, sizes = _flat_keep(graphs, runs_per_graph, keep)
        out = self.unroll(cell, graphs, starts, seeds, msgs, budget, delay, fifo, message_rows=widths, keep=flat,
                          loss=loss, noise_seeds=noise)
        return list(out.final_of(flat.to(out.final_rows.device)).split(sizes))

    def level_sizes(self, graphs: Sequence[Union[GraphData, Graph]], runs_per_graph: Sequence[Sequence[RunSpec]],
                    budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
                    keep: Optional[Sequence[Union[Tensor, Sequence[int]]]] = None) -> tuple[int, ...]:
        """Rows per level of the level program that :meth:`execute_many` would run for these runs
        (with ``keep``, per graph as there: the rows it computes for those entries; with ``dedup``
        and ``GraphData`` graphs, each level's distinct rows; empty levels left out).

        The program depends on the graphs, start nodes, budget and delays only, not on a cell
        (always-emit cells); it comes from (and stays in) the program cache, so asking costs
        one planning pass at most. :func:`ampsim.train.synthetic.stack_groups` weighs it:
        a stacked level is K times larger, and from about 512 rows per model on, K stacked
        models cost a CPU more than K single ones (docs/learned_amp.md).
        """
        V.positive_int("budget", budget)
        if len(graphs) != len(runs_per_graph):
            raise ValueError(f"{len(graphs)} graphs but {len(runs_per_graph)} run lists")
        gs = [_graph(g) for g in graphs]
        starts = [[tuple(int(v) for v in r.starts) for r in rr] for rr in runs_per_graph]
        seeds = [[V.integer("RunSpec.seed", r.seed) for r in rr] for rr in runs_per_graph]
        widths = [[r.messages.shape[0] for r in rr] for rr in runs_per_graph]
        program = self._program(graphs, gs, starts, seeds, widths, budget, get_delay(delay), bool(fifo),
                                self.ties or engine_ties())
        if keep is not None:
            program = _pruned(program, _flat_keep(graphs, runs_per_graph, keep)[0].numpy())
        if all(isinstance(g, GraphData) for g in graphs):
            program = self._dedup_for(program, graphs, None, torch.cat([g.x for g in graphs]),
                                      torch.cat([r.messages for rr in runs_per_graph for r in rr]))
        return tuple(b - a for a, b in program.bounds)

    # ------------------------------------------------------------- core
    def unroll(self, cell: Cell, graphs: Sequence[Union[GraphData, Graph]],
               starts: Sequence[Sequence[Sequence[int]]], seeds: Sequence[Sequence[int]], messages: Tensor,
               budget: int, delay: Union[str, DelayModel] = "constant", fifo: bool = False,
               message_rows: Optional[Sequence[Sequence[int]]] = None,
               features: Optional[Sequence[Tensor]] = None, history: bool = False,
               keep: Optional[Union[Tensor, Sequence[int]]] = None, loss: float = 0.0,
               noise_seeds: Optional[Sequence[Optional[int]]] = None) -> Unrolled:
        """Run ``starts[g][r]`` (start nodes of run r of graph g, delay seed ``seeds[g][r]``) on every graph.

        ``messages`` holds the start messages row after row: run r's j-th start node
        receives the row ``offset(r) + j``, where ``offset`` advances by ``message_rows[g][r]``
        rows per run (default: the number of start nodes). Features are ``graph.x``
        (or ``features[g]``). Returns an :class:`Unrolled`; gradients flow to the cell's
        parameters and to ``messages``. ``history``: keep every state row, so that
        :meth:`Unrolled.history` can go back more than one state (the skip readout of
        Table 4); the automatic segment plan otherwise checkpoints a large run and keeps
        only its final states.

        ``keep``: the entries (indices into the ``(graph, run, node)`` order of
        :attr:`Unrolled.final_rows`) whose states the caller reads. The levels driver then
        computes only the deliveries in their causal past (same schedule, same values,
        same gradients; the Table 4 readout reads 18-39% of the rows, docs/batched.md);
        reading the final state of an entry that was left out raises. The lock-step
        driver computes every row whatever ``keep`` says.

        ``loss``: the engine's message loss (the same copies are lost). ``noise_seeds[g]``: the
        noise seed of graph g's runs, for cells that draw random numbers (``None``: no noise).
        Cells with per-node inputs (``cell.node_inputs``) get ``NodeInputs`` (degree, noise key)
        in ``init_state``; a counted cell is planned with its ``count_rule``. A run of a cell
        with ``finished`` that goes quiet with unfinished nodes ends ``"stalled"``, as in the engine.
        """
        budget = V.positive_int("budget", budget)  # argument checks: ampsim.validate, one error per bad argument
        loss = V.probability("loss", loss, allow_one=False)
        fifo = V.boolean("fifo", fifo)
        V.boolean("history", history)
        if history and self.segment_rows:
            raise ValueError(f"history=True keeps every state row, but this executor cuts runs into segments of "
                             f"{self.segment_rows} rows: use BatchedExecutor(segment_rows=None or 0)")
        V.finite_values("start messages", messages)
        if features is not None:
            for g, f in enumerate(features):
                V.finite_values(f"features[{g}]", f)
        if not (len(graphs) == len(starts) == len(seeds)):
            raise ValueError(f"{len(graphs)} graphs, {len(starts)} start lists, {len(seeds)} seed lists")
        gs = [_graph(g) for g in graphs]
        if keep is not None:
            keep = _entries("keep", keep, sum(len(st) * g.num_nodes for g, st in zip(gs, starts)))
        model = get_delay(delay)
        ties = self.ties or engine_ties()
        params = list(cell.parameters())
        ref = params[0]
        device, dtype = ref.device, ref.dtype
        for g, (st, sd) in enumerate(zip(starts, seeds)):
            if len(st) != len(sd):
                raise ValueError(f"graph {g}: {len(st)} runs but {len(sd)} seeds")
        num_runs = [len(st) for st in starts]
        emission = emission_of(cell)
        rule = cell.count_rule if emission == "counted" else None
        mode = self.mode
        if mode == "auto":
            mode = "lockstep" if emission == "learned" else "levels"
        if mode == "levels" and emission == "learned":
            raise ValueError(f"mode 'levels' needs a planned schedule; {cell.kind!r} (emission 'learned') "
                             "has a value-dependent schedule: use mode 'lockstep' or 'auto'")
        kernel = kernel_for(cell) if mode == "levels" else None
        own_features = features
        if features is None:
            if not all(isinstance(g, GraphData) for g in graphs):
                raise ValueError("pass features= when graphs are not GraphData")
            features = [g.x for g in graphs]
        if len(features) == 1:  # one graph: no cat (a sparse x stays coalesced)
            x = features[0].to(device=device, dtype=dtype)
        else:
            x = torch.cat([f.to(device=device, dtype=dtype) for f in features]) if features else ref.new_zeros((0, cell.in_features))
        if x.shape[0] != sum(g.num_nodes for g in gs):
            raise ValueError("features do not have one row per node")
        program = None
        runs = _runs(starts, seeds)
        msg_rows, n_msgs = _message_rows(gs, runs, message_rows)
        if messages.dim() != 2 or messages.shape[0] != n_msgs or messages.shape[1] != cell.msg_size:
            raise ValueError(f"messages must be ({n_msgs}, {cell.msg_size}), got {tuple(messages.shape)}")
        if mode == "levels" and rule is not None:
            _check_start_tags(cell, messages, msg_rows)
        inputs = None
        if getattr(cell, "node_inputs", None):
            inputs = _node_inputs(gs, noise_seeds, dtype, device)
        if (mode == "levels" and emission == "counted" and self.settled and not history and not self.record
                and inputs is not None and settles(cell)):
            out = settle_runs(cell, gs, [_graph_hash(g) for g in graphs], runs, msg_rows, x, inputs,
                              messages.to(device=device, dtype=dtype), budget, model, fifo, ties, loss, self.plans)
            if out is not None:
                return self._settled_result(out, gs, num_runs, device)
        if mode == "levels":
            program = self._program(graphs, gs, starts, seeds, message_rows, budget, model, fifo, ties, loss, rule)
            if keep is not None:
                program = _pruned(program, keep)
        else:
            idx = torch.from_numpy(np.concatenate(msg_rows) if msg_rows else np.zeros(0, dtype=np.int64)).to(device)
        if program is not None:
            if inputs is None:  # start states read more than the features: no dedup
                program = self._dedup_for(program, graphs, own_features, x, messages)
            idx = program.on(device)[3]  # the caller's row of each start-message slot
        init_nodes = None if program is None else program.init_nodes
        init_states = cell.init_state(x if init_nodes is None else x.index_select(0, init_nodes.to(device)), inputs)
        start_msgs = messages.to(device=device, dtype=dtype).index_select(0, idx)
        build = torch.is_grad_enabled() and (init_states.requires_grad or start_msgs.requires_grad
                                             or any(p.requires_grad for p in params))
        records = None
        compact = False
        missing = program is not None and program.missing is not None and len(program.missing) > 0
        if program is not None and kernel is None:  # a planned cell without a kernel: its own step, level by level
            self.last_path = "planned"
            driver = ProgramDriver(program, device)
            if build:
                states = _Unroll.apply(cell, driver, init_states, start_msgs, *params)
            else:
                states, _ = _forward_levels(cell, driver, init_states, start_msgs, build=False)
        elif program is not None:
            loop = fused_for(kernel, device, dtype, resolve(self.fused))
            self.last_path = "eager" if loop is None else "fused"
            seg = self._segments(program, cell, dtype, device, whole=history, fused=loop is not None)
            if build:
                states = _LevelUnroll.apply(kernel, loop, program, seg, device, init_states, start_msgs,
                                            *kernel.params)
            else:
                states = _forward_segments(kernel, program, seg, init_states, start_msgs, device, False, loop)[0]
            if seg.compact:
                compact = True
                final_rows = 1 + torch.from_numpy(np.searchsorted(seg.out_rows, program.final_rows.numpy())).to(device)
                if missing:
                    final_rows.index_fill_(0, program.missing.to(device), -1)
                back = torch.zeros(states.shape[0], dtype=torch.long, device=device)
        else:
            offs = np.concatenate([[0], np.cumsum([len(r) for r in msg_rows])]).astype(np.int64)
            starts_global = [np.arange(len(r), dtype=np.int64) + o for r, o in zip(msg_rows, offs[:-1])]
            init_halted = cell.halted(init_states.detach()).tolist()
            driver = _LockStepDriver(gs, runs, starts_global, budget, model, bool(fifo), ties, init_halted,
                                     device, self.record, loss)
        if program is not None:
            if not compact:
                final_rows = program.marked_finals(device) if missing else program.on(device)[2]
                back = program.back(device)
            reasons, deliveries, batches = program.reasons, program.deliveries, len(program.bounds)
            if self.record:
                records = [[("deliver", d.dst, d.msg_id, d.cause_id) for d in s.deliveries(r)]
                           for s in program.schedules for r in range(s.num_runs)]
        else:
            self.last_path = "lockstep"
            if build:
                states = _Unroll.apply(cell, driver, init_states, start_msgs, *params)
            else:
                states, _ = _forward_levels(cell, driver, init_states, start_msgs, build=False)
            final_rows = driver.final_rows(gs, [len(r) for r in runs])
            back = torch.tensor([0] * (1 + len(init_halted)) + driver.state_src, dtype=torch.long, device=device)
            reasons, deliveries, batches = tuple(driver.reasons), tuple(driver.deliveries), driver.batches
            if hasattr(cell, "finished"):
                reasons = _stalled(cell, states, final_rows, reasons, [g.num_nodes for g in gs],
                                   num_runs)
            if self.record:
                records = [run[4] for run in driver.runs]
        entry = np.concatenate([[0], np.cumsum([r * g.num_nodes for r, g in zip(num_runs, gs)])])
        result = Unrolled(states, final_rows, back, tuple(int(e) for e in entry),
                          tuple((r, g.num_nodes) for r, g in zip(num_runs, gs)), reasons, deliveries,
                          batches, records, compact, None if compact else program)
        self.last = result
        return result

    def _settled_result(self, out, gs: Sequence[Graph], num_runs: Sequence[int], device) -> Unrolled:
        """The :class:`Unrolled` of a settled batch: a zero row, then the final state of every entry."""
        final, reasons, deliveries = out
        states = torch.cat([final.new_zeros(1, final.shape[1]), final])
        E = final.shape[0]
        entry = np.concatenate([[0], np.cumsum([r * g.num_nodes for r, g in zip(num_runs, gs)])])
        result = Unrolled(states, torch.arange(1, E + 1, device=device), torch.zeros(E + 1, dtype=torch.long,
                          device=device), tuple(int(e) for e in entry), tuple((r, g.num_nodes) for r, g in
                          zip(num_runs, gs)), reasons, deliveries, 0, None, True, None, final)
        self.last_path = "settled"
        self.last = result
        return result

    def _dedup_for(self, program: _Program, graphs, features, x: Tensor, messages: Tensor) -> _Program:
        """:func:`_deduped` of ``program`` for these leaves (``program`` itself with ``dedup=False``).

        The start-state numbers of a batch of ``GraphData`` (``features`` not given) are remembered
        for the last few batches (a training loop passes the same graphs every epoch), keyed by
        each graph's feature tensor by identity and version; the entry holds those tensors, so an
        identity cannot be reused while it is kept."""
        if not self.dedup or not program.num_deliveries:
            return program
        if features is not None or x.requires_grad or not all(isinstance(g, GraphData) for g in graphs):
            init_class = _init_classes(x)
        else:
            key = (x.dtype, tuple((id(g.x), g.x._version) for g in graphs))
            hit = self._classes.get(key)
            if hit is None:
                hit = self._classes[key] = ([g.x for g in graphs], _init_classes(x))
                while len(self._classes) > max(4, self.program_cache):
                    self._classes.popitem(last=False)
            else:
                self._classes.move_to_end(key)
            init_class = hit[1]
        return _deduped(program, init_class, _start_classes(messages, program.msg_index))

    def _segments(self, program: _Program, cell: Cell, dtype: torch.dtype, device: torch.device,
                  whole: bool = False, fused: bool = False) -> _Segments:
        """The program's segments for this cell (cached on the program per device and segment size);
        ``whole``: one segment, every state row kept; ``fused``: sized for the compiled loop."""
        D = program.num_deliveries
        if whole:
            rows = (D,)
        elif self.segment_rows is None:
            rows = segment_plan(program, cell, dtype, fused)
        else:
            rows = (D if self.segment_rows <= 0 else self.segment_rows,)
        key = ("segments", str(device), rows)
        if key not in program._device:
            program._device[key] = _cut(program, rows, device)
        return program._device[key]

    def _program(self, graphs, gs: Sequence[Graph], starts, seeds, message_rows, budget: int, model: DelayModel,
                 fifo: bool, ties: str, loss: float = 0.0, rule=None) -> _Program:
        """The compiled level program of this batch, from the cache when the same batch comes again.

        The cache key is the batch itself as nested tuples (graph hashes, start nodes, the
        seeds where the delay model reads them): an exact dict key, compared element by
        element on a hit, and built at C speed (a Table 4 PROTEINS step starts ~37k runs).
        """
        dk = delay_key(model)
        hashes = [_graph_hash(g) for g in graphs]
        key = None
        if dk is not None and self.program_cache:
            key = (budget, dk, bool(fifo), ties, tuple(hashes), _nested(starts),
                   _nested(seeds, 1) if seeded(model, loss) else None,
                   None if message_rows is None else _nested(message_rows, 1), loss, getattr(rule, "key", None))
            try:
                program = self._programs.get(key)
            except TypeError:  # an unhashable start node (e.g. a list): no caching for this batch
                key, program = None, None
            if program is not None:
                self._programs.move_to_end(key)
                return program
        runs = _runs(starts, seeds)
        msg_rows, n_msgs = _message_rows(gs, runs, message_rows)
        schedules = [self.plans.get(g, gruns, budget, model, fifo, ties, gh, loss, rule)
                     for g, gh, gruns in zip(gs, hashes, runs)]
        program = _compile(schedules, msg_rows, n_msgs, keep_schedules=self.record)
        if key is not None:
            self._programs[key] = program
            while len(self._programs) > self.program_cache:
                self._programs.popitem(last=False)
        return program


def _runs(starts, seeds) -> list[list[tuple[tuple, int]]]:
    """Per graph, the runs ``[(start nodes, seed), ...]`` (the planner's form)."""
    return [list(zip((tuple(s) for s in st), sd)) for st, sd in zip(starts, seeds)]


def _nested(value, depth: int = 2) -> tuple:
    """``value`` (lists of lists of ...) as nested tuples, ``depth`` levels below the outer one."""
    if depth == 1:
        return tuple(map(tuple, value))
    return tuple(_nested(v, depth - 1) for v in value)


def _message_rows(gs: Sequence[Graph], runs, message_rows) -> tuple[list[np.ndarray], int]:
    """Per graph, the row of ``messages`` that each start slot (engine order) receives; and the row count."""
    out = []
    offset = 0
    for g, (graph, gruns) in enumerate(zip(gs, runs)):
        rows = []
        for r, (st, _) in enumerate(gruns):
            width = len(st) if message_rows is None else int(message_rows[g][r])
            if width < len(st):
                raise ValueError(f"graph {g} run {r}: {len(st)} start nodes but {width} message rows")
            rows.append(offset + start_index(st, graph.num_nodes)[1])
            offset += width
        out.append(np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64))
    return out, offset


def _check_start_tags(cell: Cell, messages: Tensor, msg_rows: Sequence[np.ndarray]) -> None:
    """Refuse start messages that a counted cell does not read as starts (``cell.message_tags`` not 0).

    The planner replays the count rule with tag 0 for every start message (its protocol: 0 = the
    start message); a start row with another tag would be planned as a start while the cell's
    ``step`` counts it as a neighbour's message, and the states would silently differ from the engine's."""
    tags_of = getattr(cell, "message_tags", None)
    used = np.concatenate(msg_rows) if len(msg_rows) else np.zeros(0, dtype=np.int64)
    if tags_of is None or not len(used):
        return
    tags = tags_of(messages.detach().index_select(0, torch.from_numpy(used).to(messages.device)))
    bad = tags.nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f"start message row {int(used[i])} has tag {int(tags[i])} for {type(cell).__name__} "
                         f"(its count rule reads it as a neighbour's message, not as a start); the batched "
                         f"executor plans every start message as tag 0: start with cell.start_message(k), or run "
                         f"these runs in the SimPy engine (EngineExecutor) or with mode='lockstep'")


def _degrees(graph: Graph, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(n,) the graph's degrees as a tensor, kept with the graph's planner memo (a training loop asks every epoch)."""
    memo = _graph_memo(graph)
    key = ("degrees", dtype, str(device))
    if key not in memo:
        memo[key] = torch.tensor(graph.degrees, dtype=dtype, device=device)
    return memo[key]


def _node_inputs(gs: Sequence[Graph], noise_seeds: Optional[Sequence[Optional[int]]], dtype: torch.dtype,
                 device: torch.device) -> NodeInputs:
    """:class:`NodeInputs` of every (graph, node): degrees, and noise keys from graph g's ``noise_seeds[g]``."""
    if noise_seeds is not None and len(noise_seeds) != len(gs):
        raise ValueError(f"{len(gs)} graphs but {len(noise_seeds)} noise seeds")
    deg = torch.cat([_degrees(g, dtype, device) for g in gs]) if len(gs) != 1 else _degrees(gs[0], dtype, device)
    keys = [noise_keys(None if noise_seeds is None else noise_seeds[i], torch.arange(g.num_nodes))
            for i, g in enumerate(gs)]
    return NodeInputs(deg, torch.cat(keys).to(device) if keys else torch.zeros(0, dtype=torch.int64))


def _stalled(cell: Cell, states: Tensor, final_rows: Tensor, reasons: Sequence[str], sizes: Sequence[int],
             num_runs: Sequence[int]) -> tuple[str, ...]:
    """``reasons`` with every quiescent run that has an unfinished node (``cell.finished``) marked ``"stalled"``."""
    done = cell.finished(states.detach().index_select(0, final_rows)).tolist()
    out, e, r = list(reasons), 0, 0
    for n, runs in zip(sizes, num_runs):
        for _ in range(runs):
            if out[r] == "quiescent" and not all(done[e: e + n]):
                out[r] = "stalled"
            e += n
            r += 1
    return tuple(out)

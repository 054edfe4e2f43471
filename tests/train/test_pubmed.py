"""PubMed from its topology (:mod:`ampsim.train.pubmed`): the structural features against hand-computed values and
dense matrix powers, the seeded split, a tiny end-to-end run through the node-classification protocol, the timing
rows, and ``ampsim nodes pubmed``'s bad inputs (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from ampsim.cli import main
from ampsim.train import pubmed as P
from ampsim.train.node_classification import AMPWaveClassifier, NodeConfig, build_model


def _edges(pairs):
    both = [(u, v) for u, v in pairs] + [(v, u) for u, v in pairs]
    return torch.tensor(sorted(both), dtype=torch.long).T.contiguous()


def _random_graph(n=60, p=0.08, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < p]
    pairs += [(u, u + 1) for u in range(n - 1) if (u, u + 1) not in pairs]  # connected
    y = torch.tensor(rng.integers(0, classes, n), dtype=torch.long)
    for c in range(classes):  # every class has at least 2 nodes
        y[2 * c: 2 * c + 2] = c
    return _edges(sorted(set(pairs))), y, n, classes


# ----------------------------------------------------------------- features
def test_features_of_a_triangle_with_a_pendant_and_an_isolated_node():
    # 0-1-2 a triangle, 2-3 a pendant edge, 4 isolated
    f = P.structural_features(_edges([(0, 1), (0, 2), (1, 2), (2, 3)]), 5).double()
    col = {name: f[:, i] for i, name in enumerate(P.FEATURE_NAMES)}
    deg = torch.tensor([2.0, 2, 3, 1, 0], dtype=torch.float64)
    assert torch.allclose(col["log_degree"], torch.log1p(deg))
    assert torch.allclose(col["return_2"], torch.tensor([5 / 12, 5 / 12, (1 / 2 + 1 / 2 + 1) / 3, 1 / 3, 0],
                                                        dtype=torch.float64), atol=1e-7)
    # closed 3-walks only round the triangle: 2 of them from node 0, each (1/2)(1/2)(1/3)
    assert torch.allclose(col["return_3"], torch.tensor([1 / 6, 1 / 6, 2 / 12, 0, 0], dtype=torch.float64),
                          atol=1e-7)
    assert torch.allclose(col["clustering"], torch.tensor([1, 1, 1 / 3, 0, 0], dtype=torch.float64), atol=1e-7)
    l2, l3 = math.log(3), math.log(4)
    assert torch.allclose(col["nbr_mean_log_degree"], torch.tensor([(l2 + l3) / 2, (l2 + l3) / 2, (2 * l2 + math.log(2)) / 3,
                                                                    l3, 0], dtype=torch.float64), atol=1e-6)
    assert torch.allclose(col["nbr_min_log_degree"], torch.tensor([l2, l2, math.log(2), l3, 0], dtype=torch.float64),
                          atol=1e-6)
    assert torch.allclose(col["nbr_max_log_degree"], torch.tensor([l3, l3, l2, l3, 0], dtype=torch.float64),
                          atol=1e-6)


def test_return_probabilities_equal_dense_matrix_powers_and_the_features_are_deterministic():
    edge_index, _, n, _ = _random_graph()
    f = P.structural_features(edge_index, n)
    A = torch.zeros(n, n, dtype=torch.float64)
    A[edge_index[0], edge_index[1]] = 1.0
    Pm = A / A.sum(1, keepdim=True)
    for k, name in ((2, "return_2"), (3, "return_3"), (4, "return_4")):
        expect = torch.linalg.matrix_power(Pm, k).diagonal()
        assert torch.allclose(f[:, P.FEATURE_NAMES.index(name)].double(), expect, atol=1e-6)
    deg = A.sum(1)
    tri = torch.linalg.matrix_power(A, 3).diagonal()
    clus = torch.where(deg > 1, tri / (deg * (deg - 1)).clamp_min(1), torch.zeros_like(deg))
    assert torch.allclose(f[:, P.FEATURE_NAMES.index("clustering")].double(), clus, atol=1e-6)
    assert torch.equal(f, P.structural_features(edge_index, n))
    z = P.standardize(f)
    assert torch.allclose(z.mean(0), torch.zeros(z.shape[1]), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(z.shape[1]), atol=1e-4)
    assert torch.equal(P.standardize(torch.ones(4, 2)), torch.zeros(4, 2))  # a constant column is 0


# ----------------------------------------------------------------- split
def test_split_is_disjoint_sized_per_class_and_deterministic():
    _, y, n, k = _random_graph(n=200, p=0.02)
    train, val, test = P.seeded_split(y, k, 0, train_per_class=5, val=40, test=60)
    assert not bool((train & val).any() or (train & test).any() or (val & test).any())
    assert (int(train.sum()), int(val.sum()), int(test.sum())) == (5 * k, 40, 60)
    assert torch.bincount(y[train], minlength=k).tolist() == [5] * k
    again = P.seeded_split(y, k, 0, train_per_class=5, val=40, test=60)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))
    other = P.seeded_split(y, k, 1, train_per_class=5, val=40, test=60)
    assert not torch.equal(train, other[0])
    with pytest.raises(ValueError, match="fewer than train_per_class"):
        P.seeded_split(y, k, 0, train_per_class=1000)
    with pytest.raises(ValueError, match="cannot hold"):
        P.seeded_split(y, k, 0, train_per_class=5, val=150, test=60)


def test_the_pubmed_split_and_features_are_the_documented_ones():
    task = P.pubmed_task()
    assert task.graph.num_nodes == 19717 and task.graph.x.shape == (19717, len(P.FEATURE_NAMES))
    assert (int(task.train_mask.sum()), int(task.val_mask.sum()), int(task.test_mask.sum())) == (60, 500, 1000)
    assert torch.bincount(task.graph.y[task.train_mask], minlength=3).tolist() == [20, 20, 20]
    again = P.pubmed_task()
    assert torch.equal(task.train_mask, again.train_mask) and torch.equal(task.graph.x, again.graph.x)


# ----------------------------------------------------------------- end to end, small
def test_a_tiny_end_to_end_run_through_the_protocol(tmp_path):
    task = P.pubmed_task(graph=_random_graph())
    rows = ("majority", "MLP", "GCN", "AMP-Mean", "AMP-Mean-nobias")
    P.train_rows(task, rows, [0, 1], str(tmp_path), epochs=3)
    s = P.summary(task, str(tmp_path), rows=rows)
    assert list(s["rows"]) == list(rows)
    for key in rows[1:]:
        row = s["rows"][key]
        assert row["seeds"] == 2 and row["epochs"] == 3 and 0.0 <= row["mean"] <= 100.0
        assert all(1 <= e <= 3 for e in row["best_epochs"])
    md = P.render_markdown(s)
    assert "| AMP-Mean-nobias |" in md and "majority class" in md
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert files == sorted(f"PubMed/{k}/seed{s}.json" for k in rows[1:] for s in (0, 1))
    saved = json.loads((tmp_path / "PubMed" / "AMP-Mean-nobias" / "seed0.json").read_text())
    assert saved["config"]["bias"] is False and "robustness" not in saved
    # a second call finds every seed finished: nothing is retrained
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    P.train_rows(task, rows, [0, 1], str(tmp_path), epochs=3)
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}


def test_no_bias_keeps_the_cell_biases_at_zero_and_mlp_ignores_the_graph():
    task = P.pubmed_task(graph=_random_graph())
    model = build_model(task, NodeConfig("PubMed", "AMP-Mean", bias=False, normalize=False))
    assert isinstance(model, AMPWaveClassifier)
    assert all(not b.requires_grad and not b.any() for b in model.cell.biases)
    with pytest.raises(ValueError, match="bias=False"):
        NodeConfig("PubMed", "GCN", bias=False)
    with pytest.raises(ValueError, match="unknown data set"):
        NodeConfig("Nope")
    from ampsim.train.node_classification import Protocol

    proto = Protocol(task, NodeConfig("PubMed", "MLP", normalize=False))
    proto.model.eval()
    logp = proto.logp(proto.model, None, 0)
    x = task.features
    expect = torch.log_softmax(torch.relu(x @ proto.model.w0) @ proto.model.w1, dim=-1)
    assert torch.allclose(logp, expect, atol=1e-6)


def test_timing_rows_are_multiples_of_the_gcn():
    task = P.pubmed_task(graph=_random_graph())
    t = P.time_epochs(task, ("GCN", "AMP-Mean"), epochs=2, warmup=0, width=4)
    assert [r["model"] for r in t["rows"]] == ["GCN", "AMP-Mean"] and t["features"] == 4
    assert t["rows"][0]["x_gcn"] == 1.0 and len(t["rows"][1]["times"]) == 2
    assert t["rows"][1]["x_gcn"] == pytest.approx(t["rows"][1]["s_per_epoch"] / t["rows"][0]["s_per_epoch"])
    md = P.render_markdown(P.summary(task, "missing-folder", [t], rows=("majority",)))
    assert "| AMP-Mean |" in md and "width 4" in md


# ----------------------------------------------------------------- the command
def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "5-2"], "argument --seeds"),
    (["--models", "Nope"], "argument --models"),
    (["--epochs", "0"], "argument --epochs"),
    (["--timing-epochs", "-1"], "argument --timing-epochs"),
    (["--timing-features", "0"], "argument --timing-features"),
    (["--timing-models", "AMP-GRU"], "argument --timing-models"),
    (["--out", "/dev/null"], "--out /dev/null: is a character device"),
    (["--out", "."], "--out .: is a folder"),
    (["--runs", "afile"], "afile"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    code, out, err = _run(["nodes", "pubmed", "--models", "majority", "--timing-epochs", "0"] + argv, capsys)
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_the_command_writes_its_stem_atomically_under_runs_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["nodes", "pubmed", "--models", "majority", "MLP", "--seeds", "0", "--epochs", "2",
                           "--timing-epochs", "0"], capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "runs" / "pubmed.json").read_text())
    assert set(s["rows"]) == {"majority", "MLP"} and s["rows"]["MLP"]["epochs"] == 2 and s["timing"] == []
    assert (tmp_path / "runs" / "pubmed.md").read_text() == P.render_markdown(s)
    assert (tmp_path / "runs" / "pubmed_runs" / "PubMed" / "MLP" / "seed0.json").exists()
    assert not [p for p in tmp_path.rglob("*partial*")]
    code, _, _ = _run(["nodes", "pubmed", "--models", "majority", "--out", "x/y.md", "--timing-epochs", "0"], capsys)
    assert code == 0 and sorted(os.listdir(tmp_path / "x")) == ["y.json", "y.md"]

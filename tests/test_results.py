"""Every published table in results/ is what its packed runs give, byte for byte, and results/ stays small.

Each test recomputes one artefact from its pack (``results/*_runs.jsonl.gz``, read through
:func:`ampsim.runpack.folder`) with the code that renders it, writing into a temporary folder,
and compares the Markdown and JSON with the committed files exactly. ``results/README.md`` names
the command behind each of them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _same(written: Path, published: str) -> None:
    assert written.read_bytes() == (RESULTS / published).read_bytes(), f"{published} differs from its packed runs"


def test_table4_from_its_packed_runs(tmp_path):
    from ampsim.train import table4_report as gc
    from ampsim.train.loop import write_result

    summary = gc.summarize(str(RESULTS / "table4_runs.jsonl.gz"))
    write_result(str(tmp_path / "table4.json"), summary)
    _same(tmp_path / "table4.json", "table4.json")
    md = gc.render_table4(summary, "results/table4.json", "results/table4.md", "results/table4_runs.jsonl.gz")
    assert md == (RESULTS / "table4.md").read_text(encoding="utf-8")


def _tables_root() -> str:
    from ampsim.train import tables

    return ",".join(str(RESULTS / name) for name in tables.PACKS)


def test_tables_2_3_and_figure_6_markdown_from_their_packed_runs():
    from ampsim.train import table_reports, tables

    root = _tables_root()
    t3 = tables.table3_summary(root)
    assert table_reports.render_table2(tables.table2_summary(root)) == (RESULTS / "table2.md").read_text(encoding="utf-8")
    assert table_reports.render_table3(t3) == (RESULTS / "table3.md").read_text(encoding="utf-8")
    assert table_reports.render_figure6(t3, tables.table3_summary(root, task="parity-multi")) == (
        RESULTS / "figure6.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_table_of_the_tables_module_from_its_packed_runs(tmp_path):
    """Tables 2, 3, Figure 6 and the gate comparison (its deliveries replay the packed checkpoints)."""
    from ampsim.train import table_reports

    written = table_reports.write_all(_tables_root(), str(tmp_path))
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["figure5a.png", "figure5b.png", "figure6.json", "figure6.md", "figure6.png", "gate.json",
                     "gate.md", "table2.json", "table2.md", "table3.json", "table3.md", "table3_details.json"]
    for name in names:
        if not name.endswith(".png"):  # pictures: the figures' numbers are the JSON's; pixels vary with matplotlib
            _same(tmp_path / name, name)


@pytest.mark.parametrize("name", ["node_classification", "node_classification_long"])
def test_node_classification_from_its_packed_runs(tmp_path, name):
    from ampsim.train.node_classification import write_summary

    robust = tmp_path / "delay_robustness"
    write_summary(str(RESULTS / f"{name}_runs.jsonl.gz"), str(tmp_path / f"{name}.json"), str(tmp_path / f"{name}.md"),
                  str(robust))
    _same(tmp_path / f"{name}.json", f"{name}.json")
    _same(tmp_path / f"{name}.md", f"{name}.md")
    if name == "node_classification":  # the robustness table comes from the same runs
        _same(tmp_path / "delay_robustness.json", "delay_robustness.json")
        _same(tmp_path / "delay_robustness.md", "delay_robustness.md")
    else:
        assert not robust.with_suffix(".json").exists()


@pytest.mark.slow
def test_delays_training_from_its_packed_runs(tmp_path):
    from ampsim.theory import delays_training

    delays_training.summarize(str(tmp_path / "delays_training"), str(RESULTS / "delays_training_runs.jsonl.gz"))
    _same(tmp_path / "delays_training.json", "delays_training.json")
    _same(tmp_path / "delays_training.md", "delays_training.md")


def test_results_is_small_and_every_entry_has_its_row_in_the_readme():
    files = [Path(base) / f for base, _, names in os.walk(RESULTS) for f in names]
    assert len(files) < 300
    assert sum(f.stat().st_size for f in files) < 15_000_000
    readme = (RESULTS / "README.md").read_text(encoding="utf-8")
    for entry in sorted(os.listdir(RESULTS)):
        if entry == "README.md":
            continue
        stem = entry.split(".")[0] if os.path.isfile(RESULTS / entry) else entry + "/"
        assert f"`{stem}" in readme, f"results/{entry} has no row in results/README.md"
    assert not [f for f in files if re.search(r"_v[0-9]+\b", f.name)], "superseded versions left in results/"


def test_figure4_from_its_command(tmp_path):
    from ampsim.cli import main

    assert main(["figure4", "--seeds", "3", "--out", str(tmp_path / "figure4")]) == 0
    published = (RESULTS / "figure4.md").read_text(encoding="utf-8")
    ours = (tmp_path / "figure4.md").read_text(encoding="utf-8").replace(str(tmp_path / "figure4"), "results/figure4")
    assert ours == published


def test_pubmed_from_its_packed_runs(tmp_path):
    """The accuracy rows from the packed seeds; the timing tables as published (timings are not rerun)."""
    import json

    from ampsim.train import pubmed

    published = json.loads((RESULTS / "pubmed.json").read_text(encoding="utf-8"))
    s = pubmed.summary(pubmed.pubmed_task(), str(RESULTS / "pubmed_runs.jsonl.gz"), published["timing"])
    pubmed.write_tables(str(tmp_path / "pubmed"), s)
    _same(tmp_path / "pubmed.json", "pubmed.json")
    _same(tmp_path / "pubmed.md", "pubmed.md")

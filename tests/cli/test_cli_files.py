"""Where commands read and write: file stems (``--out STEM``), the published packs read from any folder, and plan
lines that count what is left to do when some runs already exist."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from ampsim import runpack
from ampsim.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # a usage error found by the parser
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


# ----------------------------------------------------------------- --out STEM
@pytest.mark.parametrize("argv, files", [
    (["figure4", "--seeds", "1"], "/dev/null.md"),
    (["verify", "separation", "--learned", "off", "--pair", "cycle:4,cycle:4"], "/dev/null.json and /dev/null.md"),
    (["delays", "summarize", "--root", "."], "/dev/null.json and /dev/null.md and /dev/null_curves.png"),
])
def test_an_out_stem_that_is_a_device_is_refused_before_the_plan(argv, files, capsys):
    shape = re.sub(r"/dev/null", "STEM", files)
    code, out, err = _run(argv + ["--out", "/dev/null"], capsys)
    assert code == 2 and out == "" and err == [
        f"ampsim: error: --out /dev/null: is a character device; --out STEM writes {shape} ({files}), not into it: "
        "give a file stem, e.g. --out results/name"]
    assert not any(os.path.exists(f) for f in files.split(" and "))


def test_nodes_robustness_stem_that_is_a_device_is_refused_before_any_file(tmp_path, capsys):
    code, _, err = _run(["nodes", "render", "--out", str(tmp_path), "--json", str(tmp_path / "s.json"), "--md",
                         str(tmp_path / "s.md"), "--robustness", "/dev/null"], capsys)
    assert code == 2 and err == [
        "ampsim: error: --robustness /dev/null: is a character device; --robustness STEM writes STEM.json and STEM.md "
        "(/dev/null.json and /dev/null.md), not into it: give a file stem, e.g. --robustness results/name"]
    assert list(tmp_path.iterdir()) == [] and not os.path.exists("/dev/null.json")


def test_an_out_stem_that_is_a_folder_is_refused_and_a_named_file_is_honoured(tmp_path, capsys):
    code, _, err = _run(["figure4", "--seeds", "1", "--out", str(tmp_path)], capsys)
    assert code == 2 and err == [f"ampsim: error: --out {tmp_path}: is a folder; --out STEM writes STEM.md "
                                 f"({tmp_path}.md), not into it: give a file stem, e.g. --out {tmp_path}/name"]
    assert list(tmp_path.iterdir()) == []
    code, _, _ = _run(["figure4", "--seeds", "1", "--out", str(tmp_path / "sub" / "f4.md")], capsys)
    assert code == 0 and [p.name for p in (tmp_path / "sub").iterdir()] == ["f4.md"]
    assert f"`ampsim figure4 --seeds 1 --out {tmp_path / 'sub' / 'f4'}`" in (tmp_path / "sub" / "f4.md").read_text()


def test_help_says_out_is_a_stem(capsys):
    for argv in (["figure4", "--help"], ["verify", "separation", "--help"], ["delays", "summarize", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert info.value.code == 0 and "--out STEM" in text and "a folder, a device or a FIFO is refused" in text


# ----------------------------------------------------------------- the published packs, from any folder
def test_published_runs_are_read_from_any_folder(tmp_path):
    """``reaction --delay`` reads the published Table 3 run by default, wherever it is started."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "ampsim", "reaction", "--delay", "uniform", "--seeds", "0", "--sizes",
                           "25", "--graphs", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("total (uniform delays, 1 graphs per size, 1 seeds): ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, pack", [
    (["reaction", "--delay", "uniform", "--seeds", "0", "--sizes", "25", "--graphs", "1"], "table3_runs.jsonl.gz"),
    (["delays", "summarize", "--root", "."], "table2_runs.jsonl.gz"),
])
def test_a_missing_published_pack_is_one_line_naming_it(argv, pack, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runpack, "CHECKOUT", str(tmp_path / "checkout"))
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(argv + (["--out", str(tmp_path / "s")] if argv[0] == "delays" else []), capsys)
    assert code == 2 and err == [f"ampsim: error: {tmp_path / 'checkout' / 'results' / pack}: no such pack"]


# ----------------------------------------------------------------- plans count what is left
def _finished(folder: Path, config: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"finished": True, "config": config}))


def test_table2_plan_counts_only_the_runs_left(tmp_path, monkeypatch, capsys):
    import ampsim.cli.tables as T
    from ampsim.train.synthetic import run_folder
    from ampsim.train.tables import protocol_config

    _finished(Path(run_folder(str(tmp_path), "limits1", "amp-rnn", 1)), protocol_config("limits1", "amp-rnn", 1).to_dict())
    monkeypatch.setattr(T, "run_protocol", lambda *a, **k: [])  # the plan line is what is tested, not the training
    code, _, err = _run(["table2", "run", "--root", str(tmp_path), "--tasks", "limits1", "--seeds", "0-2"], capsys)
    assert code == 0 and len(err) == 1
    assert re.fullmatch(rf"2 runs \(1 tasks x 1 models x 3 seeds, 1 of the 3 already finished under {tmp_path}, 1,000 "
                        r"epochs each\), about .* over 1 worker", err[0]), err


def test_table2_refuses_a_run_of_another_configuration_before_the_plan(tmp_path, monkeypatch, capsys):
    import ampsim.cli.tables as T
    from ampsim.train.synthetic import run_folder
    from ampsim.train.tables import protocol_config

    folder = Path(run_folder(str(tmp_path), "limits1", "amp-rnn", 0))
    other = protocol_config("limits1", "amp-rnn", 0).to_dict() | {"lr": 0.5}
    _finished(folder, other)
    monkeypatch.setattr(T, "run_protocol", lambda *a, **k: pytest.fail("trained"))
    code, _, err = _run(["table2", "run", "--root", str(tmp_path), "--tasks", "limits1", "--seeds", "0"], capsys)
    assert code == 2 and err == [f"ampsim: error: {folder}/result.json holds a run of another configuration (lr 0.5 "
                                 "there, 0.01 here); it is never overwritten: give another --out (or --root), or move "
                                 "it away"]


def test_nodes_plan_counts_only_the_seeds_left(tmp_path, monkeypatch, capsys):
    import ampsim.cli.nodes as N
    from ampsim.train.node_classification import result_path

    argv = ["nodes", "run", "--datasets", "Cora", "--models", "GCN", "--seeds", "0-2", "--out", str(tmp_path),
            "--json", str(tmp_path / "s.json"), "--md", str(tmp_path / "s.md")]
    planned = N.configs(build_parser(argv).parse_args(argv))
    path = result_path(str(tmp_path), planned[0])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"finished": True, "config": asdict(planned[0])}))
    trained = []
    monkeypatch.setattr(N, "load_node_task", lambda *a, **k: None)
    monkeypatch.setattr(N, "train_seed", lambda c, *a, **k: trained.append(c.seed) or {
        "test_acc": 0.5, "val_acc": 0.5, "best_epoch": 1, "seconds": 0})
    monkeypatch.setattr(N, "write_summary", lambda *a, **k: {})
    code, _, err = _run(argv, capsys)
    assert code == 0 and trained == [1, 2] and len(err) == 1
    assert re.fullmatch(rf"2 runs \(1 data sets x 1 models x delays x 3 seeds, 1 of the 3 already finished under "
                        rf"{tmp_path}, \d+ epochs each\), about .* over 1 worker", err[0]), err
    path.write_text(json.dumps({"finished": True, "config": asdict(planned[0]) | {"lr": 0.5}}))
    code, _, err = _run(argv, capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"ampsim: error: {path} holds a finished run of another "
                                                             "configuration (differs in ['lr'])")

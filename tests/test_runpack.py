"""ampsim.runpack: a folder of run files as one gzipped JSON Lines file, and back."""
from __future__ import annotations

import gzip
import json
import os

import pytest

from ampsim import runpack


def _runs(root):
    for seed in (0, 1):
        folder = root / "lcc" / "amp-rnn" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"seed": seed, "loss": [0.5, 0.25], "test": {"acc": 0.1 * seed}},
                                                       indent=1))
        (folder / "checkpoint.pt").write_bytes(bytes(range(256)) * (seed + 1))
    (root / "lcc" / "amp-rnn" / "seed0" / ".result.json.partial-1-0").write_text("half")
    return root


def test_pack_holds_one_line_per_file_sorted_and_unpacks_to_the_same_content(tmp_path):
    root = _runs(tmp_path / "runs")
    assert runpack.pack(str(root), str(tmp_path / "a.jsonl.gz")) == 4
    entries = list(runpack.read_pack(str(tmp_path / "a.jsonl.gz")))
    assert [e["path"] for e in entries] == ["lcc/amp-rnn/seed0/checkpoint.pt", "lcc/amp-rnn/seed0/result.json",
                                            "lcc/amp-rnn/seed1/checkpoint.pt", "lcc/amp-rnn/seed1/result.json"]
    assert entries[1]["json"] == {"seed": 0, "loss": [0.5, 0.25], "test": {"acc": 0.0}}
    assert runpack.unpack([str(tmp_path / "a.jsonl.gz")], str(tmp_path / "back")) == 4
    for rel in [e["path"] for e in entries]:
        a, b = root / rel, tmp_path / "back" / rel
        if rel.endswith(".json"):
            assert json.loads(a.read_text()) == json.loads(b.read_text())
        else:
            assert a.read_bytes() == b.read_bytes()
    assert sorted(os.listdir(tmp_path / "back" / "lcc" / "amp-rnn" / "seed0")) == ["checkpoint.pt", "result.json"]


def test_pack_is_byte_identical_for_the_same_runs_and_plain_gzip_jsonl(tmp_path):
    root = _runs(tmp_path / "runs")
    runpack.pack(str(root), str(tmp_path / "a.jsonl.gz"))
    runpack.pack(str(root), str(tmp_path / "b.jsonl.gz"))
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    lines = gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()).decode().splitlines()
    assert len(lines) == 4 and json.loads(lines[1])["path"] == "lcc/amp-rnn/seed0/result.json"


def test_select_keeps_only_matching_paths(tmp_path):
    root = _runs(tmp_path / "runs")
    n = runpack.pack(str(root), str(tmp_path / "a.jsonl.gz"), ["*/seed*/result.json", "*/seed[0]/checkpoint.pt"])
    assert n == 3
    assert [e["path"] for e in runpack.read_pack(str(tmp_path / "a.jsonl.gz"))] == [
        "lcc/amp-rnn/seed0/checkpoint.pt", "lcc/amp-rnn/seed0/result.json", "lcc/amp-rnn/seed1/result.json"]


def test_folder_of_a_folder_is_itself_and_of_packs_their_union_once_per_process(tmp_path):
    root = _runs(tmp_path / "runs")
    assert runpack.folder(str(root)) == str(root)
    a, b = str(tmp_path / "a.jsonl.gz"), str(tmp_path / "b.jsonl.gz")
    runpack.pack(str(root), a, ["*/seed0/*"])
    runpack.pack(str(root), b, ["*/seed1/*"])
    both = runpack.folder(f"{a},{b}")
    assert sorted(os.listdir(os.path.join(both, "lcc", "amp-rnn"))) == ["seed0", "seed1"]
    assert runpack.folder(f"{a},{b}") == both
    inner = runpack.folder(f"{a}/lcc/amp-rnn/seed0")
    assert inner == os.path.join(runpack.folder(a), "lcc", "amp-rnn", "seed0")
    with open(os.path.join(inner, "result.json"), encoding="utf-8") as f:
        assert json.load(f)["seed"] == 0


def test_is_pack():
    assert runpack.is_pack("results/table4_runs.jsonl.gz")
    assert runpack.is_pack("a.jsonl.gz,b.jsonl.gz")
    assert not runpack.is_pack("runs/table4_runs")
    assert not runpack.is_pack("a.jsonl.gz,runs")


def test_bad_input_raises_one_clear_error_and_writes_nothing(tmp_path):
    root = _runs(tmp_path / "runs")
    with pytest.raises(ValueError, match="not a folder of runs"):
        runpack.pack(str(tmp_path / "missing"), str(tmp_path / "a.jsonl.gz"))
    with pytest.raises(ValueError, match=r"ends in \.jsonl\.gz"):
        runpack.pack(str(root), str(tmp_path / "a.jsonl"))
    with pytest.raises(ValueError, match="no run files matching"):
        runpack.pack(str(root), str(tmp_path / "a.jsonl.gz"), ["nothing/*"])
    assert not list(tmp_path.glob("a.*"))
    with pytest.raises(FileNotFoundError, match="no such pack"):
        list(runpack.read_pack(str(tmp_path / "missing.jsonl.gz")))
    runpack.pack(str(root), str(tmp_path / "a.jsonl.gz"))
    with pytest.raises(ValueError, match="is in another pack too"):
        runpack.unpack([str(tmp_path / "a.jsonl.gz")] * 2, str(tmp_path / "back"))
    (tmp_path / "evil.jsonl.gz").write_bytes(gzip.compress(b'{"path": "../x.json", "json": {}}\n'))
    with pytest.raises(ValueError, match="evil.jsonl.gz:1: not a pack entry"):
        runpack.unpack([str(tmp_path / "evil.jsonl.gz")], str(tmp_path / "back2"))
    assert not (tmp_path / "x.json").exists()


def test_cli_pack_and_unpack(tmp_path, capsys):
    root = _runs(tmp_path / "runs")
    out = str(tmp_path / "a.jsonl.gz")
    from ampsim.cli import main

    assert main(["runs", "pack", str(root), out]) == 0
    assert capsys.readouterr().out == f"wrote {out} (4 files)\n"
    assert main(["runs", "unpack", out, str(tmp_path / "back")]) == 0
    assert capsys.readouterr().out == f"wrote 4 files under {tmp_path / 'back'}\n"
    assert main(["runs", "pack", str(tmp_path / "missing"), out]) == 2
    assert capsys.readouterr().err == f"ampsim: error: {tmp_path / 'missing'}: not a folder of runs\n"


def test_a_root_that_holds_no_runs_is_refused_by_name(tmp_path):
    from ampsim import runpack

    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'gone'}: no such folder of runs"):
        runpack.folder(str(tmp_path / "gone"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a folder of runs"):
        runpack.folder(str(tmp_path / "a.txt"))
    assert runpack.folder(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("argv", [["table2", "render", "--root"], ["delays", "summarize", "--root"],
                                  ["nodes", "render", "--out"], ["table4", "render", "--out"]])
def test_renderers_refuse_a_missing_root_in_one_line(argv, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ampsim", *argv, str(tmp_path / "gone")], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"ampsim: error: {tmp_path / 'gone'}: no such folder of runs"
    assert sorted(p.name for p in tmp_path.iterdir()) == []

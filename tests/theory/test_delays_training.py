"""Section 4.3's claim decided by paired tests over seeds (``ampsim.theory.delays_training``)."""
import subprocess
import sys

import pytest

from ampsim.theory import delays_training as D


def test_paired_test_counts_ties_and_gives_the_exact_wilcoxon_p():
    constant = [1.0] * 10
    uniform = [2.0] * 9 + [0.5]  # nine seeds favour constant (|d| = 1), one favours uniform with the smallest |d|
    t = D.paired_test(constant, uniform, lower_is_better=True, band=0.02, relative=True)
    assert (t["n"], t["ties"], t["favour_constant"], t["favour_uniform"]) == (10, 0, 9, 1)
    # |d| = 0.5 has rank 1, the nine |d| = 1 share ranks 2..10: W = min(rank sums) = 1
    assert t["W"] == 1.0
    assert t["p"] == pytest.approx(0.00390625)  # exact: 2 * P(W <= 1) = 2 * 2 / 1024


def test_paired_test_tie_band_drops_small_differences():
    t = D.paired_test([0.5, 0.5, 0.5], [0.504, 0.6, 0.495], lower_is_better=False, band=0.01, relative=False)
    assert (t["ties"], t["favour_constant"], t["favour_uniform"]) == (2, 0, 1)  # higher accuracy: uniform
    all_tied = D.paired_test([1.0, 2.0], [1.0, 2.01], lower_is_better=True, band=0.02, relative=True)
    assert (all_tied["ties"], all_tied["W"], all_tied["p"]) == (2, None, 1.0)


def _row(loss_c, loss_u, acc_c, acc_u):
    return {"seeds": list(range(len(loss_c))),
            "tests": {"loss_mean": D.paired_test(loss_c, loss_u, True, D.LOSS_BAND, True),
                      "test_acc": D.paired_test(acc_c, acc_u, False, D.ACC_BAND, False)}}


def test_verdict_rule_on_the_published_parity_shape_and_its_mirror():
    # nine seeds favour constant, the one that favours uniform has the largest difference: p = 0.084
    loss_c = [0.03602, 0.04733, 0.04009, 0.03960, 0.38979, 0.02966, 0.03352, 0.04083, 0.03658, 0.04005]
    loss_u = [0.09244, 0.07624, 0.06908, 0.07095, 0.09111, 0.06475, 0.07074, 0.06954, 0.05548, 0.07216]
    acc = [0.9] * 10
    v, why = D.verdict(_row(loss_c, loss_u, acc, acc))
    assert v == "no difference" and "W = 10.0, p = 0.084" in why
    assert D.verdict(_row(loss_c[:4] + loss_c[5:], loss_u[:4] + loss_u[5:], acc[:9], acc[:9]))[0] == "confirmed"
    assert D.verdict(_row(loss_u, loss_c, acc, acc))[0] == "no difference"
    worse_acc = [0.8] * 10
    assert D.verdict(_row(loss_c[:4] + loss_c[5:], loss_u[:4] + loss_u[5:], worse_acc[:9], acc[:9]))[0] == "refuted"


def test_extra_seeds_plan_runs_both_delay_models_past_the_table_runs():
    items = D.plan(0, 0, 1000, 100, ["parity"], 12)
    assert items == [("parity", "constant", 1000, 10), ("parity", "uniform", 1000, 10),
                     ("parity", "constant", 1000, 11), ("parity", "uniform", 1000, 11)]
    assert "table3_runs" not in D.run_dir("parity", "constant", 1000, 10, "runs/x")
    assert D.run_dir("parity", "constant", 1000, 10, "runs/x") == "runs/x/parity/constant/e1000/seed10"


@pytest.mark.parametrize("argv", [["--extra-tasks", "parity"], ["--extra-seeds", "12"],
                                  ["--extra-tasks", "parity", "--extra-seeds", "10"]])
def test_extra_seeds_without_their_partner_are_refused(argv, tmp_path):
    r = subprocess.run([sys.executable, "-m", "ampsim", "delays", "run", "--root", str(tmp_path), "--full-seeds", "0",
                        "--short-seeds", "0", *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--extra-seeds" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_plan_that_selects_nothing_says_so_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ampsim", "delays", "run", "--root", str(tmp_path), "--full-seeds", "0",
                        "--short-seeds", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert r.stderr.splitlines() == [f"0 run(s) planned under {tmp_path}, 0 finished, 0 to train (one AMP-RNN fit "
                                     "each: 1-10 minutes of one core per 1000 epochs; rerun to resume)"]
    assert list(tmp_path.iterdir()) == []

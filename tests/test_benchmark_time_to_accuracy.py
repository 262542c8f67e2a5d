"""benchmarks.time_to_accuracy: the first epoch at each threshold, timed by the steps only."""

import pytest

from benchmarks.time_to_accuracy import crossings, report


def _rows(accs, seconds=60.0):
    return [
        {"epoch": str(i + 1), "test_acc": str(a), "val_acc": str(a), "epoch_time_s": str(seconds)}
        for i, a in enumerate(accs)
    ]


def test_crossings_sum_the_epochs_up_to_the_first_that_reaches_each_threshold():
    got = crossings(_rows([0.8, 0.86, 0.91, 0.9]), [0.85, 0.90, 0.93])
    assert got == [(0.85, 2, 120.0), (0.90, 3, 180.0), (0.93, None, None)]


def test_a_run_without_the_report_column_says_how_to_get_it():
    rows = [{"epoch": "1", "val_acc": "0.5", "epoch_time_s": "1"}]
    with pytest.raises(SystemExit, match="evaluate.test_every_epoch=true"):
        crossings(rows, [0.5])


def test_the_report_is_a_markdown_table(tmp_path):
    import csv

    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "test_acc", "val_acc", "epoch_time_s"])
        writer.writeheader()
        writer.writerows(_rows([0.86, 0.95], seconds=90.0))
    text = report(tmp_path, [0.85, 0.99])
    assert "| ≥ 0.85 | 1 | 1.5 min |" in text
    assert "| ≥ 0.99 | not reached | – |" in text

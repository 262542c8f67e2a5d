from pathlib import Path

from fcnn.training.config import CheckpointConfig, CsvLoggerConfig, load_config
from fcnn.training.outputs import confine, output_paths


def _config(tmp_path, reports_dir, *callbacks):
    config = load_config("configs/mnist.yaml", [f"reports_dir={reports_dir}", "callbacks=[]"])
    import attrs

    return attrs.evolve(config, callbacks=tuple(callbacks))


def test_paths_outside_the_run_folder_are_kept_only_when_typed(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    config = _config(
        tmp_path,
        "/elsewhere/reports",
        CheckpointConfig(filepath="/elsewhere/best.npz"),
        CsvLoggerConfig(filepath="notes/metrics.csv"),  # relative: inside the run folder
    )
    confined, refused = confine(config, run_dir)
    assert confined.reports_dir == str(run_dir.parent)  # the ledger: the runs folder
    assert confined.callbacks[0].filepath is None
    assert confined.callbacks[1].filepath == str((run_dir / "notes/metrics.csv").resolve())
    assert [line.split(":")[0] for line in refused] == [
        "not writing reports_dir /elsewhere/reports",
        "not writing callbacks[0].filepath /elsewhere/best.npz",
    ]
    typed, refused = confine(config, run_dir, set(output_paths(config)))
    assert refused == [] and typed.callbacks[0].filepath == "/elsewhere/best.npz"
    assert typed.reports_dir == "/elsewhere/reports"


def test_a_relative_path_cannot_climb_out_of_the_run_folder(tmp_path):
    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    config = _config(tmp_path, None, CheckpointConfig(filepath="../../precious.npz"))
    confined, refused = confine(config, run_dir)
    assert confined.callbacks[0].filepath is None and len(refused) == 1
    assert not Path(tmp_path.parent / "precious.npz").exists()

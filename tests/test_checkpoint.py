import json

import numpy as np
import pytest

from fcnn import checkpoint, models, tree
from fcnn import random as fr
from fcnn.testing import assert_trees_all_close


def _lenet():
    preset = models.get("lenet_mnist")
    _, params, state = preset.network.init(fr.key(0), preset.input_shape)
    return preset, params, state


def test_round_trip_rebuilds_network_params_and_state(tmp_path):
    preset, params, state = _lenet()
    manifest = {"architecture": preset.network.spec, "input_shape": list(preset.input_shape)}
    path = checkpoint.save(tmp_path / "m.npz", manifest, params=params, state=state)
    ckpt = checkpoint.load(path)
    assert ckpt.manifest["fcnn_version"] and "params/0.w" in ckpt.arrays
    net, params2, state2 = checkpoint.build(ckpt)
    assert net.spec == preset.network.spec
    assert_trees_all_close(params2, params, rtol=0)
    x = np.ones((2, 1, 28, 28), np.float32)
    np.testing.assert_array_equal(net.apply(params2, x)[0], preset.network.apply(params, x)[0])


def test_architecture_mismatch_is_a_clear_error(tmp_path):
    preset, params, _ = _lenet()
    other = models.get("lenet_mnist", num_classes=5)
    _, template, _ = other.network.init(fr.key(0), other.input_shape)
    checkpoint.save(tmp_path / "m.npz", {}, params=params)
    with pytest.raises(checkpoint.CheckpointError, match=r"11.w has shape \(10, 84\)"):
        checkpoint.fill(template, checkpoint.load(tmp_path / "m.npz").group("params"), "params")


def test_unreadable_or_foreign_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(checkpoint.CheckpointError, match="not a checkpoint"):
        checkpoint.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(checkpoint.CheckpointError, match="no manifest"):
        checkpoint.load(tmp_path / "plain.npz")
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "none.npz")


def test_damaged_and_newer_files_say_what_is_wrong(tmp_path):
    preset, params, _ = _lenet()
    whole = checkpoint.save(tmp_path / "m.npz", {"a": 1}, params=params).read_bytes()
    for cut in (10, len(whole) // 3, len(whole) - 5):
        (tmp_path / "cut.npz").write_bytes(whole[:cut])
        with pytest.raises(checkpoint.CheckpointError, match="truncated or damaged"):
            checkpoint.load(tmp_path / "cut.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match="is empty"):
        checkpoint.load(tmp_path / "empty.npz")
    checkpoint.save(tmp_path / "new.npz", {}, params=params)
    ckpt = checkpoint.load(tmp_path / "new.npz")
    newer = {**ckpt.manifest, "format_version": checkpoint.FORMAT_VERSION + 1}
    np.savez(tmp_path / "newer.npz", __manifest__=np.array(json.dumps(newer)), **ckpt.arrays)
    with pytest.raises(checkpoint.CheckpointError, match="newer fcnn.*upgrade fcnn"):
        checkpoint.load(tmp_path / "newer.npz")


def test_todays_shipped_model_still_loads():
    # the format this fcnn writes is the one the shipped model (and users' last.npz) has
    ckpt = checkpoint.load("webapp/model/dermascan.npz")
    assert ckpt.manifest["format_version"] == checkpoint.FORMAT_VERSION
    net, params, state = checkpoint.build(ckpt)
    stored = ckpt.manifest["architecture"]["layers"]
    # the rebuilt spec is the stored one, plus hyperparameters added since at their defaults
    for old, new in zip(stored, net.spec["layers"], strict=True):
        assert old == {k: new[k] for k in old}
        assert {k: new[k] for k in set(new) - set(old)} in ({}, {"scale": True})


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    checkpoint.save(path, {"v": 1}, params={"w": np.ones(3)})

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"v": 2}, params={"w": np.zeros(3)})
    assert checkpoint.load(path).manifest["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_no_pickle_is_ever_loaded(tmp_path):
    np.savez(tmp_path / "obj.npz", __manifest__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(checkpoint.CheckpointError, match="holds Python objects"):
        checkpoint.load(tmp_path / "obj.npz")


def test_the_typed_manifest_round_trips_what_fcnn_writes(fake_mnist_root, tiny_config):
    from fcnn.training.run import train

    result = train(
        tiny_config("train.epochs=1", "callbacks=[{checkpoint: {monitor: val_acc}}]"),
        data_dir=fake_mnist_root,
        echo=lambda _: None,
    )
    for path in ("webapp/model/dermascan.npz", result.last_checkpoint, result.best_checkpoint):
        raw = checkpoint.load(path).manifest
        typed = checkpoint.ModelManifest.from_dict(raw)
        assert typed.to_dict() == raw
    last = checkpoint.load(result.last_checkpoint).info
    assert last.resumable and last.training.epoch == 1 and last.kind == "last"
    best = checkpoint.load(result.best_checkpoint).info
    assert not best.resumable and best.class_names == tuple(str(d) for d in range(10))
    assert best.calibration is None or "method" in best.calibration


def test_an_optimizers_step_count_comes_back_as_an_int(tmp_path):
    from fcnn import optim

    preset, params, _ = _lenet()
    opt = optim.adam(0.01)
    state = opt.init(params)
    updates, state = opt.update(tree.zeros_like(params), state, params)
    checkpoint.save(tmp_path / "o.npz", {}, opt_state=state)
    back = checkpoint.fill(opt.init(params), checkpoint.load(tmp_path / "o.npz").group("opt_state"),
                           "optimizer state")  # fmt: skip
    counts = [leaf for leaf in (back[0].count, back[1].count)]
    assert counts == [1, 1] and all(type(c) is int for c in counts)

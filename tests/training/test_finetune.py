import numpy as np
import pytest

from fcnn import checkpoint, models, optim, tree
from fcnn.layers import Conv2D, Dense, Flatten, ReLU, serial
from fcnn.random import key
from fcnn.training import finetune
from fcnn.training.config import ConfigError
from fcnn.training.run import train


def _quiet(*_):
    return None


def _params(path):
    return checkpoint.build(checkpoint.load(path))[1]


def test_frozen_mask_matches_whole_path_components():
    net = serial(*([Dense(3)] * 11))
    _, params, _ = net.init(key(0), (4,))
    mask = finetune.frozen_mask(params, (1, "3.w"))
    flags = dict(
        zip([p for p, _ in tree.flatten_with_paths(params)], tree.leaves(mask), strict=True)
    )
    assert flags["1.w"] and flags["1.b"] and flags["3.w"]
    assert not flags["10.w"] and not flags["3.b"] and not flags["0.w"]  # "1" is not "10"


def test_frozen_mask_refuses_unknown_layers_and_freezing_everything():
    _, params, _ = serial(Dense(3), ReLU(), Dense(2)).init(key(0), (4,))
    with pytest.raises(
        ValueError, match=r"'7' matches no parameter.*layers with parameters are 0, 2"
    ):
        finetune.frozen_mask(params, (7,))
    with pytest.raises(ValueError, match="nothing to train"):
        finetune.frozen_mask(params, (0, 2))


def test_frozen_prefix_ends_at_the_last_frozen_layer_with_parameters():
    net = serial(Conv2D(2, 3), ReLU(), Conv2D(2, 3), ReLU(), Flatten(), Dense(2))
    _, params, _ = net.init(key(0), (1, 8, 8))
    assert finetune.frozen_prefix(params, finetune.frozen_mask(params, (0,))) == 1
    assert finetune.frozen_prefix(params, finetune.frozen_mask(params, (0, 2))) == 3
    assert finetune.frozen_prefix(params, finetune.frozen_mask(params, (2,))) == 0


def test_freeze_transform_never_moves_frozen_leaves_even_with_weight_decay():
    params = (np.ones(3, np.float32), np.ones(2, np.float32))
    grads = (np.full(3, 0.5, np.float32), np.full(2, 0.5, np.float32))
    opt = optim.freeze(optim.adamw(0.1, weight_decay=0.5), (True, False))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    assert np.all(updates[0] == 0) and np.all(updates[1] < 0)
    assert len(tree.leaves(state)) < len(tree.leaves(optim.adamw(0.1).init(params)))


def test_init_from_loads_matching_weights_and_a_new_head_starts_fresh(
    fake_mnist_root, tiny_config, tmp_path
):
    # the source: LeNet with a 12-class head (another data set's), trained or not alike
    net = models.get("lenet_mnist", num_classes=12).network
    _, params, state = net.init(key(5), (1, 28, 28))
    source = checkpoint.save(
        tmp_path / "source.npz", {"architecture": net.spec}, params=params, state=state
    )
    lines = []
    cfg = tiny_config("train.epochs=1", f"train.init_from={source}", "train.freeze=[0, 3]")
    tuned = train(cfg, data_dir=fake_mnist_root, echo=lines.append)
    after = _params(tuned.last_checkpoint)
    # the frozen convolutions are exactly the source's; the trained dense layers moved
    for i in (0, 3):
        assert np.array_equal(params[i].w, after[i].w) and np.array_equal(params[i].b, after[i].b)
    assert not np.array_equal(params[7].w, after[7].w)
    assert after[11].w.shape[0] == 10  # the new head, for MNIST's classes
    summary = next(line for line in lines if line.startswith("train.init_from"))
    assert "loaded 8 of 10 arrays" in summary
    assert any("params 11.w: shape (12, 84) in the checkpoint, (10, 84) here" in s for s in lines)
    assert any("layers 0-3 run forward-only" in s for s in lines)
    assert tuned.test_accuracy > 0.5  # frozen random convolutions still carry the blocks


def test_init_from_a_checkpoint_of_another_network_is_a_config_error(
    fake_mnist_root, tiny_config, tmp_path
):
    net = serial(Flatten(), Dense(3))
    _, params, state = net.init(key(0), (1, 28, 28))
    other = checkpoint.save(
        tmp_path / "other.npz", {"architecture": net.spec}, params=params, state=state
    )
    cfg = tiny_config(f"train.init_from={other}")
    with pytest.raises(ConfigError, match="train.init_from: no parameter of the checkpoint"):
        train(cfg, data_dir=fake_mnist_root, echo=_quiet)
    with pytest.raises(ConfigError, match="train.init_from: checkpoint .* does not exist"):
        train(tiny_config(f"train.init_from={tmp_path / 'none.npz'}"), data_dir=fake_mnist_root)


def _copy_classes(source, target, classes, per_class):
    for name in classes:
        (target / name).mkdir(parents=True)
        for path in sorted((source / name).glob("*.jpg"))[:per_class]:
            (target / name / path.name).write_bytes(path.read_bytes())


@pytest.mark.data
def test_a_cifar10_net_fine_tuned_on_a_small_image_folder(real_data_root, tmp_path):
    from fcnn.data.cifar10 import CLASS_NAMES
    from fcnn.training.config import load_config

    cifar = real_data_root / "cifar10"
    _copy_classes(cifar / "train", tmp_path / "cifar" / "train", CLASS_NAMES, 20)
    _copy_classes(cifar / "test", tmp_path / "pets" / "train", ("cat", "dog", "horse"), 20)
    common = [
        "dataset=imagefolder", "model=tiny_vgg_cifar", "model_options={widths: [8, 16]}",
        "data.val_fraction=0.2", "train.epochs=1", "train.batch_size=32", "callbacks=[]",
        f"runs_dir={tmp_path / 'runs'}", "data.augment={}",
    ]  # fmt: skip
    source = train(
        load_config("configs/cifar10_tiny_vgg.yaml", [*common, f"data.root={tmp_path / 'cifar'}"]),
        echo=_quiet,
    )
    lines = []
    tuning = [
        *common,
        f"data.root={tmp_path / 'pets'}",
        f"train.init_from={source.best_checkpoint}",
        "train.freeze=[0, 1, 3, 4]",
    ]
    tuned = train(load_config("configs/cifar10_tiny_vgg.yaml", tuning), echo=lines.append)
    before, after = _params(source.best_checkpoint), _params(tuned.best_checkpoint)
    info = checkpoint.load(tuned.best_checkpoint).info
    assert info.class_names == ("cat", "dog", "horse") and after[-1].w.shape == (3, 16)
    for i in (0, 1, 3, 4):  # the first stage, frozen: exactly the CIFAR-10 net's
        assert tree.allclose(before[i], after[i], rtol=0, atol=0)
    assert not tree.allclose(before[7], after[7], rtol=0, atol=0)  # the second stage trained
    # every convolution and BatchNorm loaded (params and running statistics); the head did not
    source_state = checkpoint.build(checkpoint.load(source.best_checkpoint))[2]
    n = len(tree.leaves(before)) + len(tree.leaves(source_state))
    assert any(f"loaded {n - 2} of {n} arrays" in line for line in lines), lines
    assert any("layers 0-4 run forward-only" in line for line in lines)

"""The epoch benchmark's jobs: each trains its own network on images of its shape."""

import pytest

from benchmarks.data import EPOCH_JOBS, QUICK_IMAGES, epoch_job


@pytest.mark.parametrize("name", sorted(EPOCH_JOBS))
def test_every_job_has_images_of_its_networks_input_shape(name, tmp_path):
    preset, data, source = epoch_job(name, quick=True, data_dir=str(tmp_path))  # no data here
    assert data.images.shape[1:] == preset.input_shape and len(data) == QUICK_IMAGES
    assert "timings only" in source and data.labels.max() < len(data.class_names)


def test_the_dermascan_rows_train_the_shipped_recipes_network_at_two_sizes(tmp_path):
    small, _, _ = epoch_job("dermascan_64", quick=True, data_dir=str(tmp_path))
    large, _, _ = epoch_job("dermascan_96", quick=True, data_dir=str(tmp_path))
    assert small.input_shape == (3, 64, 64) and large.input_shape == (3, 96, 96)
    assert small.network.spec == large.network.spec  # the same layers; only the input grows


def test_an_unknown_job_is_one_line():
    with pytest.raises(SystemExit, match="unknown epoch job 'resnet'"):
        epoch_job("resnet", quick=True, data_dir=None)

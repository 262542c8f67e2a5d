from benchmarks.report import markdown

ENV = {"fcnn": "0", "numpy": "2", "python": "3", "cpus": 2, "machine": "x", "gemm_peak_gflops": 100}


def _epoch(seconds):
    return {"seconds": seconds, "images_per_s": 60_000 / seconds}


def test_epoch_table_gives_the_ratio_of_each_fcnn_run_to_pytorch():
    epochs = {
        "lenet_mnist": {
            "fcnn": [_epoch(10.0), _epoch(12.0), _epoch(9.0)],
            "torch": [_epoch(4.0), _epoch(4.0), _epoch(5.0)],
            "fcnn_parallel": [{**_epoch(s), "procs": 2} for s in (6.0, 8.0, 6.0)],
        },
        "bn_net_mnist": {"fcnn": [_epoch(100.0)] * 3},
    }
    text = markdown({"environment": ENV, "epochs": epochs, "inference": {}, "layers": {}})
    assert "on 2 MPI processes (`fcnn train --procs 2`)" in text and "3 round(s)" in text
    # medians of the times; the ratio is the median of the rounds' ratios (2.5, 3, 1.8)
    assert (
        "| lenet_mnist | 10.0 | 6000 | 4.0 | 15000 | 2.50× (1.80–3.00) | 6.0 | 1.50× (1.20–2.00) |"
        in text
    )
    assert "| bn_net_mnist | 100.0 | 600 | – | – | – | – | – |" in text


def test_epoch_table_without_parallel_runs_says_so():
    epochs = {"lenet_mnist": {"fcnn": [_epoch(10.0)], "torch": [_epoch(5.0)]}}
    text = markdown({"environment": ENV, "epochs": epochs, "inference": {}, "layers": {}})
    assert "fcnn in one process, PyTorch" in text
    assert "| lenet_mnist | 10.0 | 6000 | 5.0 | 12000 | 2.00× | – | – |" in text


def _inference(batch, rounds_ms):
    ms = sorted(rounds_ms)[len(rounds_ms) // 2]
    return {"batch": batch, "ms": ms, "images_per_s": batch / ms * 1e3, "rounds_ms": rounds_ms}


def test_inference_table_gives_the_median_of_the_rounds_ratios():
    inference = {
        "lenet_mnist": {
            "fcnn": [_inference(1, [0.2, 0.3, 0.2]), _inference(256, [8.0, 12.0, 9.0])],
            "torch": [_inference(1, [0.4, 0.3, 0.4]), _inference(256, [8.0, 6.0, 10.0])],
        },
        "tiny_vgg_cifar": {"fcnn": [_inference(1, [2.0]), _inference(256, [200.0])]},
    }
    text = markdown({"environment": ENV, "epochs": {}, "inference": inference, "layers": {}})
    assert "3 round(s), each fcnn then PyTorch back to back" in text
    # rounds' ratios at 256: 1.0, 2.0, 0.9 -> median 1.0; medians of the times 9.0 and 8.0
    assert "| lenet_mnist | 256 | 9.00 | 28444 | 8.00 | 1.00× (0.90–2.00) |" in text
    assert "| lenet_mnist | 1 | 0.20 | 5000 | 0.40 | 0.50× (0.50–1.00) |" in text
    assert "| tiny_vgg_cifar | 256 | 200.00 | 1280 | – | – |" in text


def test_the_report_names_each_epoch_rows_data():
    env = {**ENV, "epoch_data": {"lenet_mnist": "mnist, 60000", "dermascan_96": "ham10000, 3400"}}
    text = markdown({"environment": env, "epochs": {}, "inference": {}, "layers": {}})
    assert "- lenet_mnist: mnist, 60000" in text and "- dermascan_96: ham10000, 3400" in text
    older = markdown(
        {"environment": {**ENV, "epoch_data": "MNIST"}, "epochs": {}, "inference": {}, "layers": {}}
    )
    assert "Epoch data: MNIST." in older

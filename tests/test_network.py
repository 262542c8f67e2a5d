"""A whole small network trained with the pure functions."""

import numpy as np

from fcnn import layers as L
from fcnn import optim
from fcnn import random as fr
from fcnn.losses import cross_entropy as ce


def test_a_few_hundred_sgd_steps_overfit_a_tiny_batch():
    net = L.serial(
        L.Conv2D(4, 3, padding=1),
        L.BatchNorm2D(),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(3),
    )
    _, params, state = net.init(fr.key(0), (1, 6, 6))
    rng = fr.generator(fr.key(1))
    x = rng.standard_normal((12, 1, 6, 6)).astype(np.float32)
    y = np.arange(12) % 3
    opt = optim.sgd(0.05, momentum=0.9)
    opt_state = opt.init(params)
    first_loss = None
    for _ in range(300):
        logits, cache, state = net.apply(params, x, state=state, train=True)
        loss, loss_cache = ce.forward(logits, y)
        first_loss = first_loss if first_loss is not None else float(loss)
        _, grads = net.backward(params, cache, ce.backward(loss_cache))
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
    logits, _, _ = net.apply(params, x, state=state, train=False)
    assert (logits.argmax(axis=1) == y).mean() == 1.0
    assert float(loss) < 0.05 * first_loss

"""The training loop behind ``fcnn train``: configs, data preparation, the pure training step
and the loop around it, callbacks, the fits after training and the run's outputs.

Submodules are imported by name (``from fcnn.training.run import train``); this package
imports none of them, so that a process that needs one part pays for no other.
"""

"""Classwise: train and diagnose image classifiers for small, imbalanced 32x32 datasets."""

import os

# OpenMP threads that spin while they wait make torch's CPU kernels 3-10x slower as
# soon as another process holds a core (measured on 2 cores: 0.3 s vs 3.0 s a
# training step of a width-16 ResNet-18); waiting passively costs little when the
# machine is idle. OpenMP reads this once, when torch first loads, so it is set here,
# before any module of the package imports torch. A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

"""Learning-rate schedules shared by the trainers (`toyfaces train-generator`, `fit`)."""
from __future__ import annotations

import math


def cosine_lr(step: int, steps: int, lr: float, lr_final: float | None) -> float:
    """The learning rate of `step`: constant, or cosine from lr (step 0) to lr_final (last step).

    At a constant rate Adam's noise keeps the weights moving: the last checkpoint is one draw
    from a wandering trajectory. Annealing lets them settle.
    """
    if lr_final is None:
        return lr
    t = min(step / max(steps, 1), 1.0)
    return lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * t))

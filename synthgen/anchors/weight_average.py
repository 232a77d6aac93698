"""An exponential moving average of an anchor's weights over a fit (`synthgen fit --ema-decay`).

At a constant learning rate the last step's weights are one draw from the neighbourhood the
optimiser wanders in; the anchor's labels move with it from checkpoint to checkpoint. The
average over the last 1 / (1 - decay) steps or so sits in the middle of that neighbourhood (Polyak
averaging; the EMA generators of StyleGAN), and `sample` then reads weights that do not
depend on which step happened to be last. Training itself never reads the average, and the
checkpoint keeps both (a resumed run continues the same average).
"""
from __future__ import annotations

import torch

from synthgen.anchors.anchor import Anchor, anchor_tensors, load_anchor_state


class WeightAverage:
    """EMA of every floating tensor of anchor_tensors(anchor) (weights and buffers); integer
    buffers (BatchNorm's batch counter) are copied."""

    def __init__(self, anchor: Anchor, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone().float() if v.is_floating_point() else v.clone()
                      for k, v in anchor_tensors(anchor).items()}

    def next_rate(self) -> float:
        """How far the next update moves the average towards the weights: (1 - decay) / (1 - decay^t)
        for the t-th update, so the average is the decay^(t - s)-weighted mean of the weights
        after each step s (an EMA with Adam's bias correction): the weights the fit started
        from get no weight, and the first update takes the weights as they are."""
        t = self.updates + 1
        return (1.0 - self.decay) / (1.0 - self.decay ** t)

    @torch.no_grad()
    def update(self, anchor: Anchor) -> None:
        rate = self.next_rate()
        for k, v in anchor_tensors(anchor).items():
            avg = self.state[k]
            if avg.is_floating_point():
                avg.lerp_(v.detach().float(), rate)
            else:
                avg.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict:
        """For a checkpoint: on the CPU (the decay is the run's config.json's, pinned on resume)."""
        return {"updates": self.updates, "state": {k: v.cpu() for k, v in self.state.items()}}

    def load_state_dict(self, saved: dict) -> None:
        self.updates = int(saved["updates"])
        for k, avg in self.state.items():
            avg.copy_(saved["state"][k])

    def copy_to(self, anchor: Anchor) -> None:
        """Put the average into `anchor` (each tensor in the anchor's own dtype)."""
        load_anchor_state(anchor, self.state)

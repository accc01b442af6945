"""The training step as one CUDA graph: forward, backward, clipping and the optimizer in a single
launch per step, where eager PyTorch launches hundreds of small kernels (on an H200 the VAE's eager
step is 2.8 ms, nearly all of it launch overhead; its graph replays in 0.6 ms).

The step is captured once, after a few ordinary steps (which create the optimizer state and let
ActNorm initialise), and then replayed on a static input batch. What a replay needs to stay right:

  * the batch is copied into the static input, outside the graph (``prepare`` and its seeded noise
    stay as they are in the eager loop);
  * random numbers drawn inside the step (the GAN's z and dropout, the VAE's eps) come from the
    default CUDA generator, which graphs advance on every replay;
  * the learning rate is a tensor on the device, which the engine fills each epoch (a float would
    be baked into the graph); ``set_lr`` does either;
  * the returned losses live in the graph's memory and are overwritten by the next replay, so each
    replay's are cloned.

A checkpoint stores plain optimizer settings (``plain_optimizer_state``): float learning rates and
``capturable`` off, so a graphed run resumes anywhere, eagerly on a CPU too.
"""
from __future__ import annotations

import torch

WARMUP_STEPS = 3


def set_lr(group: dict, value: float) -> None:
    """Set a param group's learning rate, in place where it is a tensor a graph reads."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def plain_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` with float learning rates and ``capturable`` off."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"])
        if "capturable" in group:
            group["capturable"] = False
    return state


class GraphedStep:
    """``step(batch)`` = ``model.train_step(batch, optimizers)``, replayed from a CUDA graph after
    ``WARMUP_STEPS`` ordinary steps."""

    def __init__(self, model, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.model, self.optimizers = model, optimizers
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: torch.Tensor | None = None
        self.outputs: dict[str, torch.Tensor] = {}
        self.eager_steps = 0
        self.side = torch.cuda.Stream()

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.graph is None:
            if self.eager_steps < WARMUP_STEPS:
                self.eager_steps += 1
                return self._eager(batch)
            self._capture(batch)
        self.static.copy_(batch)
        self.graph.replay()
        return {name: value.clone() for name, value in self.outputs.items()}

    def _eager(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        # Steps before a capture run on a side stream, as CUDA graphs ask: the capture then sees
        # no work of these steps pending on its stream.
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            outputs = self.model.train_step(batch, self.optimizers)
        torch.cuda.current_stream().wait_stream(self.side)
        return outputs

    def _capture(self, batch: torch.Tensor) -> None:
        device = batch.device
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["capturable"] = True
                if not isinstance(group["lr"], torch.Tensor):
                    group["lr"] = torch.tensor(float(group["lr"]), device=device)
        self.static = batch.clone()
        torch.cuda.synchronize(device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.outputs = self.model.train_step(self.static, self.optimizers)
        self.graph = graph

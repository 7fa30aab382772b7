"""L2-SP: soft parameter sharing, a pull of the backbone toward its starting weights.

Li, Grandvalet and Davoine (2018) regularise fine-tuning with

    Omega(w) = alpha / 2 * ||w_S - w_S^0||^2 + beta / 2 * ||w_head||^2,

where ``w_S^0`` are the pretrained weights of the shared part (the backbone)
and the new head is decayed toward zero as usual. Plain weight decay pulls the
backbone toward zero instead, forgetting what pretraining found.

The paper trains with SGD and adds ``Omega`` to the loss. The estimators train
with AdamW by default, and an L2 term in an Adam loss is rescaled coordinate by
coordinate by the optimizer's running gradient statistics, so the pull is not
the strength asked for (Loshchilov and Hutter, "Decoupled weight decay
regularization", 2019). :class:`L2SP` therefore applies the backbone term
*decoupled* from the optimizer, as AdamW applies weight decay: after each
optimizer step it takes the implicit (proximal) gradient step of the penalty,

    w <- w^0 + (w - w^0) / (1 + lr * alpha),

which solves ``w_new = w - lr * grad Omega(w_new)``. It uses the learning rate
of each parameter's optimizer group (so discriminative learning rates and
schedules apply), it is stable at any strength (a huge ``alpha`` keeps the
backbone at ``w^0``), and it reduces to the explicit gradient step for small
``lr * alpha``. The head's decay toward zero is the optimizer's own weight
decay (``optimizer__weight_decay``; AdamW's default is 0.01).
"""

from __future__ import annotations

import torch
from skorch.callbacks import Callback

__all__ = ["L2SP"]


class L2SP(Callback):
    """Decoupled L2-SP: pull trainable backbone parameters toward their start.

    Parameters
    ----------
    alpha : float
        Strength of the pull (``l2sp`` of the estimators): the penalty is
        ``alpha / 2 * sum ||w - w0||**2`` over the trainable parameters whose
        names start with ``prefix``.
    prefix : str, default="trunk."
        Names (in ``net.module_.named_parameters()``) of the parameters the
        penalty covers; ``w0`` are their values when training begins.

    Notes
    -----
    Frozen parameters (``requires_grad=False``, as
    :class:`~sktransfer.callbacks.LayerFreezer` leaves them) are skipped: they
    do not move, so they are already at ``w0``. A group unfrozen later is
    pulled toward the weights it had at the start of training.
    """

    def __init__(self, alpha, prefix="trunk."):
        self.alpha = alpha
        self.prefix = prefix

    def initialize(self):
        """Forget the reference weights of a previous fit."""
        self._reference = None
        return self

    def on_train_begin(self, net, **kwargs):
        """Record the reference weights ``w0`` (once per fit)."""
        if getattr(self, "_reference", None) is None:
            self._reference = {
                name: p.detach().clone()
                for name, p in net.module_.named_parameters()
                if name.startswith(self.prefix)
            }

    def _pairs(self, module):
        """(parameter, reference) pairs of the trainable covered parameters."""
        params = dict(module.named_parameters())
        return [
            (params[name], ref)
            for name, ref in self._reference.items()
            if params[name].requires_grad
        ]

    def penalty(self, module) -> torch.Tensor:
        """``alpha / 2 * sum ||w - w0||**2`` over the trainable covered parameters.

        Differentiable; :meth:`on_batch_end` takes its implicit gradient step.
        """
        pairs = self._pairs(module)
        total = sum(((p - ref) ** 2).sum() for p, ref in pairs)
        return 0.5 * self.alpha * torch.as_tensor(total)

    def on_batch_end(self, net, training=False, **kwargs):
        """After an optimizer step: ``w <- w0 + (w - w0) / (1 + lr * alpha)``."""
        if not training:
            return
        refs = {id(p): ref for p, ref in self._pairs(net.module_)}
        with torch.no_grad():
            for group in net.optimizer_.param_groups:
                params = [p for p in group["params"] if id(p) in refs]
                if not params:
                    continue
                step = group["lr"] * self.alpha
                # lerp toward w0 by lr*alpha / (1 + lr*alpha): the proximal step.
                torch._foreach_lerp_(
                    params, [refs[id(p)] for p in params], step / (1.0 + step)
                )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_reference"] = None  # a copy of the backbone: not needed at rest
        return state

"""Deep domain adaptation: the pieces the fine-tuning estimators train with.

- :func:`grad_reverse` and :class:`GradientReversal`: the identity forward,
  gradients multiplied by ``-coeff`` backward (Ganin and Lempitsky 2015);
- :func:`ganin_schedule`: the reversal coefficient ``2 / (1 + exp(-10 p)) - 1``
  over training progress ``p`` (Ganin et al. 2016);
- :class:`DomainDiscriminator`: the MLP that tells source from target
  features;
- :func:`coral_loss`: the Deep CORAL loss between two batches of features
  (Sun and Saenko 2016);
- :class:`DomainAdaptation`: the submodule a network carries while it trains
  (the method, its loss weight, the discriminator and the progress), and
  :class:`DomainPairs`, the training data whose items pair each source row
  with a target row, so that every batch draws from both domains.

The fine-tuning estimators (``adaptation="dann" | "coral"``) use these; the
network they attach :class:`DomainAdaptation` to provides ``features(x)``
(the head's input) and ``classify(features)``. Nothing here holds data in
memory beyond what the datasets it wraps hold: images stream lazily.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "ADAPTATION_METHODS",
    "DomainAdaptation",
    "DomainDiscriminator",
    "DomainPairs",
    "GradientReversal",
    "coral_loss",
    "ganin_schedule",
    "grad_reverse",
]

ADAPTATION_METHODS = ("dann", "coral")


def ganin_schedule(progress: float) -> float:
    """Ganin et al.'s reversal coefficient ``2 / (1 + exp(-10 p)) - 1``.

    Parameters
    ----------
    progress : float in [0, 1]
        Fraction of the training steps done.

    Returns
    -------
    coeff : float
        0 at the start, about 0.987 half-way, about 0.9999 at the end: the
        discriminator's noisy early signal is damped while it learns.

    Examples
    --------
    >>> from sktransfer.adaptation import ganin_schedule
    >>> ganin_schedule(0.0), round(ganin_schedule(1.0), 4)
    (0.0, 0.9999)
    """
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """``x`` forward; the gradient times ``-coeff`` backward."""
    return _ReverseGradient.apply(x, float(coeff))


class GradientReversal(nn.Module):
    """The gradient-reversal layer: identity forward, ``-coeff`` backward.

    Parameters
    ----------
    coeff : float, default=1.0
        The factor ``lambda`` of the reversed gradient; set it during training
        to follow a schedule such as :func:`ganin_schedule`.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.adaptation import GradientReversal
    >>> x = torch.ones(2, requires_grad=True)
    >>> GradientReversal(0.5)(x).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000])
    """

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x):
        return grad_reverse(x, self.coeff)


class DomainDiscriminator(nn.Sequential):
    """An MLP scoring features as target (logit > 0) or source.

    Two hidden layers of ``width`` units with ReLU, as Ganin et al.'s and the
    Transfer-Learning-Library's discriminators.

    Parameters
    ----------
    n_features : int
        Width of the features it reads.
    width : int, default=256
        Width of its hidden layers.
    """

    def __init__(self, n_features: int, width: int = 256):
        super().__init__(
            nn.Linear(n_features, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 1),
        )


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL loss: ``||C_s - C_t||_F^2 / (4 d^2)`` between batch covariances.

    Parameters
    ----------
    source, target : torch.Tensor of shape (n, d) and (m, d)
        Features of a source and a target batch (at least 2 rows each).

    Returns
    -------
    loss : torch.Tensor
        A scalar, zero when both batches have the same covariance.

    Examples
    --------
    >>> import torch
    >>> from sktransfer.adaptation import coral_loss
    >>> x = torch.randn(8, 3)
    >>> float(coral_loss(x, x))
    0.0
    """
    d = source.shape[1]

    def covariance(x):
        centred = x - x.mean(dim=0, keepdim=True)
        return centred.T @ centred / max(x.shape[0] - 1, 1)

    diff = covariance(source.float()) - covariance(target.float())
    return (diff * diff).sum() / (4 * d * d)


class DomainAdaptation(nn.Module):
    """What a network carries while it trains with domain adaptation.

    Called on a batch pair ``(x_source, x_target)`` together with the
    network (which has ``features`` and ``classify``), it runs the features
    of both batches in one pass (BatchNorm sees both domains), returns the
    logits of the source batch and keeps the weighted adaptation loss in
    ``penalty`` for the training loss to add:

    * ``"dann"``: the binary cross-entropy of :class:`DomainDiscriminator`
      behind a gradient-reversal layer whose coefficient follows
      :func:`ganin_schedule` over ``step / total_steps``;
    * ``"coral"``: :func:`coral_loss` between the source and target features.

    Parameters
    ----------
    method : {"dann", "coral"}
        The adaptation loss.
    n_features : int
        Width of the network's features.
    weight : float, default=1.0
        Factor of the adaptation loss in the training loss.
    discriminator_width : int, default=256
        Hidden width of the discriminator (``"dann"`` only).
    total_steps : int, default=1
        Training steps planned, for the reversal schedule.
    """

    def __init__(
        self, method, n_features, weight=1.0, discriminator_width=256, total_steps=1
    ):
        super().__init__()
        self.method = method
        self.weight = weight
        self.total_steps = total_steps
        self.step = 0
        self.penalty = None
        if method == "dann":
            self.reversal = GradientReversal(0.0)
            self.discriminator = DomainDiscriminator(n_features, discriminator_width)

    def forward(self, network, x_source, x_target):
        features = network.features(torch.cat([x_source, x_target]))
        n = len(x_source)
        if self.method == "dann":
            if self.training:
                progress = min(self.step / max(self.total_steps, 1), 1.0)
                self.reversal.coeff = ganin_schedule(progress)
                self.step += 1
            logits = self.discriminator(self.reversal(features.float())).squeeze(1)
            is_target = torch.zeros_like(logits)
            is_target[n:] = 1.0
            loss = nn.functional.binary_cross_entropy_with_logits(logits, is_target)
        else:
            loss = coral_loss(features[:n], features[n:])
        self.penalty = self.weight * loss
        return network.classify(features[:n])


class DomainPairs(torch.utils.data.Dataset):
    """Items ``((x_source, x_target), y)``: each source item with a target row.

    The target row of source item ``i`` in an epoch is the ``i``-th of a
    permutation of the target rows drawn from ``seed`` and the epoch (cycled
    when there are more source than target rows), so that every batch holds
    as many target as source rows and each epoch visits the target rows in a
    new order.

    Parameters
    ----------
    source : torch Dataset
        The source items ``(x, y)``, with an ``epoch`` attribute (such as the
        fine-tuning estimators' training data).
    target : sequence
        The target inputs: an image dataset or a tensor of embeddings.
    seed : int
        Seed of the permutations.
    augment : object with ``reseed(epoch, index)`` or None, default=None
        The augmentation ``target`` applies, reseeded before each target row.
    """

    def __init__(self, source, target, seed, augment=None):
        self.source = source
        self.target = target
        self.seed = seed
        self.augment = augment
        self._order = (None, None)

    @property
    def epoch(self):
        """The epoch being trained (shared with the source items)."""
        return self.source.epoch

    @epoch.setter
    def epoch(self, value):
        self.source.epoch = value

    def __len__(self):
        return len(self.source)

    def _target_index(self, i):
        epoch, order = self._order
        if epoch != self.epoch:
            sequence = np.random.SeedSequence([self.seed, int(self.epoch)])
            rng = np.random.default_rng(sequence)
            order = rng.permutation(len(self.target))
            self._order = (self.epoch, order)
        return int(order[i % len(order)])

    def __getitem__(self, i):
        x, y = self.source[i]
        j = self._target_index(i)
        if self.augment is not None:
            self.augment.reseed(self.epoch, j)
        return (x, self.target[j]), y

"""Deep domain adaptation in the fine-tuning estimators: the mixin of their base.

``fit(X, y, sample_domain=...)`` with ``adaptation="dann"`` or ``"coral"``:
the source rows train the task, the target rows (unlabelled) are paired with
them batch by batch, and the adaptation loss of :mod:`sktransfer.adaptation`
(gradient reversal with a domain discriminator, or Deep CORAL) pulls the two
domains' features together. The methods here split the domains, attach the
adaptation to the network, pair the data, and expose the features that the
label-free scorers of :mod:`sktransfer.model_selection` read.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
)

from .._docstrings import Substitution
from .._torch_utils import (
    autocast,
    preserved_rng,
    resolve_batch_size,
    resolve_device,
    seeded,
)
from ..adaptation._deep import DomainAdaptation, DomainPairs
from ..adaptation._domain import (
    check_both_domains,
    check_sample_domain,
    kept_target_rows,
)
from ..images import ImageDataset
from ._docs import DOCS

__all__ = ["DomainAdaptationMixin"]


class DomainAdaptationMixin:
    """The deep-adaptation half of the fine-tuning base (``BaseFineTuner``)."""

    def _split_domains(self, images, y, sample_weight, sample_domain):
        """Source images, targets and weights, and the target images (or None).

        Without ``sample_domain`` every row is a source row and the target is
        None; ``adaptation`` then has nothing to adapt to and raises.
        """
        name = type(self).__name__
        if sample_domain is None:
            if self.adaptation is not None:
                raise ValueError(
                    f"{name}(adaptation={self.adaptation!r}) needs the target "
                    "images: pass source and target images together with "
                    "fit(X, y, sample_domain=...), positive for source rows and "
                    "negative for target rows (their labels are ignored)."
                )
            return images, y, sample_weight, None
        is_source = check_sample_domain(sample_domain, len(images))
        n_source, n_target = check_both_domains(is_source)
        source = np.flatnonzero(is_source)
        if y is not None:
            check_consistent_length(np.empty(len(images)), y)
            y = np.asarray(y)[source]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, np.empty(len(images)), dtype=np.float64
            )[source]
        self.n_source_, self.n_target_ = n_source, n_target
        return images[source], y, sample_weight, images[~is_source]

    def _attach_adaptation(self, module, seeds):
        """Give the network its :class:`DomainAdaptation` (with ``adaptation``)."""
        if self.adaptation is None:
            return
        if self._fast_path() and not isinstance(module.head[0], torch.nn.Linear):
            warnings.warn(
                f"adaptation={self.adaptation!r} with a frozen backbone and no "
                "hidden layer aligns fixed features: nothing can move. Add a "
                "trainable layer (module__bottleneck=256) or unfreeze the top "
                "layer groups (freeze=N).",
                UserWarning,
                stacklevel=6,
            )
        width = module.head[-1].in_features
        with seeded(seeds.init + 1):  # its own draws: the network's stay as they are
            module.adaptation = DomainAdaptation(
                self.adaptation,
                width,
                weight=self.adaptation_weight,
                discriminator_width=self.discriminator_width,
            )

    def _paired(self, train, target_images, module, backbone, preprocessing, seeds):
        """The training data pairing each source item with a target row."""
        augment = None
        if self._fast_path():
            target = torch.from_numpy(
                self._embed_frozen(module.trunk, backbone, preprocessing, target_images)
            )
        else:
            # A transform of its own (other seed): target draws are independent.
            transform = self._augmentation(preprocessing, seeds.augment + 1)
            augment = transform if hasattr(transform, "reseed") else None
            target = ImageDataset(target_images, preprocessing, transform)
        batch = resolve_batch_size(self.batch_size, resolve_device(self.device))
        steps = -(-len(train) // batch)  # ceil
        module.adaptation.total_steps = steps * self.max_epochs
        self._target_inputs = target  # for the target features after training
        return DomainPairs(train, target, seed=seeds.split + 1, augment=augment)

    def _end_adaptation(self, net, target_images, preprocessing):
        """Drop the discriminator; keep the target features the scorers read."""
        net.module_.adaptation = None
        target = self.__dict__.pop("_target_inputs", None)
        if isinstance(target, torch.Tensor):  # embeddings of the fast path
            features = self._head_features(net, target, precomputed=True)
        else:
            dataset = ImageDataset(target_images, preprocessing)
            features = self._head_features(net, dataset, precomputed=False)
        self.target_features_ = kept_target_rows(features)

    def _head_features(self, net, inputs, precomputed):
        """``module_.features`` of images or embeddings, in evaluation mode."""
        module = net.module_.eval()
        module.precomputed = precomputed
        batch = resolve_batch_size(self.batch_size, resolve_device(self.device))
        loader = torch.utils.data.DataLoader(
            inputs, batch_size=batch, num_workers=0 if precomputed else self.num_workers
        )
        device = torch.device(net.device)
        out = []
        try:
            with torch.no_grad(), autocast(device, self.precision):
                for x in loader:
                    out.append(module.features(x.to(device)).float().cpu())
        finally:
            module.precomputed = False
        return torch.cat(out).numpy()

    @Substitution(**DOCS)
    def validation_view(self, X):
        """What the target-aware scorers evaluate on source validation rows.

        The network treats both domains alike: the estimator itself, and the
        head's input features of ``X`` (``domain_features``).

        Parameters
        ----------
        %(X)s

        Returns
        -------
        estimator : estimator
            ``self``, which predicts on ``X``.
        X : images
            ``X`` unchanged.
        features : ndarray of shape (n_samples, n_features)
            ``domain_features(X)``, comparable with ``target_features_``.
        """
        return self, X, self.domain_features(X)

    @Substitution(**DOCS)
    def domain_features(self, X):
        """The features the head predicts from (the adapted features).

        The label-free scorers of :mod:`sktransfer.model_selection` compare
        these features of the validation rows with ``target_features_``.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        features : ndarray of shape (n_samples, n_features)
            The head's input features (after ``module__bottleneck``).
        """
        check_is_fitted(self)
        images = self._check_input(X, reset=False)
        dataset = ImageDataset(images, self.preprocessing_)
        with preserved_rng():
            return self._head_features(self._inference_net(), dataset, False)

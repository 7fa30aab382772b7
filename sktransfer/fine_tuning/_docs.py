"""Docstring text the fine-tuning estimators share, written once.

Each estimator's docstring places these blocks with
``@Substitution(**DOCS)`` (see :mod:`sktransfer._docstrings`):
``%(recipes)s`` (the recipes, as prose), ``%(recipe_parameters)s`` and
``%(runtime_parameters)s`` (the shared parameters, before and after the
estimator's own), ``%(fitted_attributes)s``, and ``%(X)s`` and
``%(sample_weight)s`` for the methods.
"""

__all__ = ["DOCS"]

DOCS = dict(
    recipes="""
    The usual fine-tuning recipes are constructor parameters, so
    ``GridSearchCV`` can compare them:

    * ``freeze="backbone"`` trains the head only (fixed feature extractor);
      ``freeze="none"`` fine-tunes everything; ``freeze=N`` trains the last N
      layer groups. Frozen means frozen: parameters *and* BatchNorm running
      statistics are bit-identical after ``fit``.
    * ``unfreeze`` unfreezes on a schedule: ``unfreeze=E`` unfreezes all layers
      at epoch E; a list of epochs unfreezes one layer group per listed epoch,
      from the top (progressive unfreezing).
    * ``discriminative_lr`` lowers the learning rate group by group toward the
      stem; ``lr_schedule`` picks step decay, cosine or one-cycle.
    * ``l2sp`` keeps the fine-tuned backbone close to its pretrained weights
      (L2-SP) rather than decaying it toward zero.
    * fastai's ``fine_tune`` recipe is ``freeze="backbone", unfreeze=1,
      discriminative_lr=0.4, lr_schedule="onecycle"`` (fastai spreads the
      learning rates 100x from the head to the stem: ``0.4 ** 5`` over
      resnet18's five layer groups); with ``lr_schedule="onecycle"`` the cycle
      restarts when layers are unfrozen.

    With ``freeze="backbone"``, ``augment=False`` and no ``unfreeze``, the
    backbone's features are computed once per fit (and cached across fits, see
    :mod:`sktransfer.cache`) and only the head trains on them: the same result
    as running the frozen backbone every epoch, many times faster.
    """,
    recipe_parameters="""
    model : str or torch.nn.Module, default="resnet18"
        A torchvision model name, ``"timm:<name>"``, or your own module
        returning features. See :func:`sktransfer.list_backbones`.
    weights : str, path-like or None, default="DEFAULT"
        ``"DEFAULT"`` or a weights name (downloaded on first use), ``None`` for
        random initialisation seeded by ``random_state``, or the path of a local
        state_dict file.
    freeze : {"none", "backbone"} or int, default="none"
        Which part of the backbone trains at the start: nothing
        (``"backbone"``), everything (``"none"``) or the last N layer groups.
    unfreeze : None, int or list of int, default=None
        Unfreezing schedule: an epoch at which every layer group starts
        training, or a list of epochs at each of which one more group starts
        training, from the top. Epochs count from 0.
    discriminative_lr : float in (0, 1] or None, default=None
        Learning-rate factor between consecutive layer groups: the head trains
        at ``lr``, the last group at ``lr * discriminative_lr``, the one below
        at ``lr * discriminative_lr**2``, down to the stem.
    l2sp : float >= 0, default=0.0
        Strength of L2-SP (soft parameter sharing, Li et al. 2018): each
        training step pulls the trainable backbone parameters toward the
        weights they started from (the pretrained ones) by the penalty
        ``l2sp / 2 * ||w - w0||**2``, applied decoupled from the optimizer,
        as AdamW applies weight decay (user guide: *Soft parameter sharing*). The head
        is decayed toward zero by the optimizer's own weight decay
        (``optimizer__weight_decay``). ``0`` turns it off: the plain recipe,
        bit for bit. Useful values with AdamW are about 1 to 100; frozen
        groups are not affected.
    lr_schedule : {"constant", "step", "cosine", "onecycle"}, default="constant"
        ``"step"`` divides the rates by 10 every 7 epochs (tune with
        ``callbacks__lr_schedule__step_size`` and ``__gamma``); ``"cosine"``
        anneals to zero; ``"onecycle"`` warms up then anneals, per batch.
    augment : bool or callable, default=True
        Training augmentation: a random resized crop (35-100% of the area) and a
        horizontal flip, seeded by ``random_state``
        (:class:`~sktransfer.images.RandomResizedCropFlip`). ``False`` turns it
        off; a callable replaces it: it receives a PIL image or a ``(3, H, W)``
        float tensor in [0, 1] and must return a ``(3, S, S)`` tensor or PIL
        image of the final size ``S`` (``image_size``). A callable with a
        ``reseed(epoch, index)`` method, such as a ``RandomResizedCropFlip``
        of your own settings, is reseeded before each training image.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Its options are set with ``optimizer__<name>`` (e.g.
        ``optimizer__weight_decay``).
    lr : float, default=1e-3
        Learning rate of the head (the base rate of the schedule).
    max_epochs : int, default=10
        Number of passes over the training data.
    batch_size : int or "auto", default=32
        Images per training step (and per prediction batch); ``"auto"`` is 8
        on the CPU and 64 on a GPU.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified by class for
        classifiers), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, and restore the weights of the best epoch.
        To keep the epoch of another validation score instead, set
        ``callbacks__early_stopping__monitor`` to its name and
        ``callbacks__early_stopping__lower_is_better=False``.
    validation_fraction : float in (0, 1), default=0.1
        Share of the data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    """,
    runtime_parameters="""
    image_size : int or None, default=None
        Side of the square crop fed to the network; ``None`` uses the weights'
        own (224 for most).
    mean, std : tuple of 3 floats or None, default=None
        Override the weights' normalisation statistics.
    image_shape : tuple of int or None, default=None
        Shape ``(H, W)`` or ``(H, W, C)`` of one image when ``X`` is a 2-D array
        of flattened images (``-1`` allowed once).
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, then Apple's MPS, else the CPU.
        It may be changed after ``fit``: prediction then runs on a copy of the
        network on the new device, and ``net_`` stays as it is.
    num_workers : int, default=0
        DataLoader worker processes decoding and augmenting images.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        ``"bfloat16"`` trains and predicts under autocast. It speeds up
        prediction on CPUs with bfloat16 units and training on recent GPUs;
        bfloat16 training on a CPU depends on its units: resnet18 trained
        2.1-2.6x faster than float32 on a 2-core CPU with AMX, and at
        0.77-0.92x of float32 on another (see the fine-tuning guide's
        *Training speed*: measure on your machine).
        ``"float16"`` is for CUDA only.
    callbacks : list of (str, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks, run after the built-in ones (``"freezer"``,
        ``"lr_schedule"``, ``"early_stopping"``, ``"progress_bar"``, ``"l2sp"``).
    random_state : int, RandomState instance or None, default=None
        Controls random initialisation (head, and backbone when
        ``weights=None``), shuffling, the validation split, augmentation and
        dropout, without touching global seeds: equal seeds give identical
        models on the CPU.
    verbose : int, default=0
        ``1`` prints skorch's table of losses per epoch.
    progress : bool or "auto", default="auto"
        Progress bars for training epochs and feature computation; ``"auto"``
        shows them on terminals only.
    adaptation : {"dann", "coral"} or None, default=None
        Deep domain adaptation to the target rows of
        ``fit(X, y, sample_domain=...)``: ``"dann"`` trains the features
        against a domain discriminator behind a gradient-reversal layer whose
        coefficient follows Ganin et al.'s ``2 / (1 + exp(-10 p)) - 1`` over
        training progress ``p``; ``"coral"`` adds the Deep CORAL loss between
        the covariances of the source and target features of each batch.
        Both act on the head's input features (after ``module__bottleneck``).
    adaptation_weight : float >= 0, default=1.0
        Factor of the adaptation loss in the training loss.
    discriminator_width : int, default=256
        Width of the two hidden layers of the domain discriminator
        (``"dann"``); the discriminator is dropped when ``fit`` ends.
    **kwargs
        skorch's routed parameters: ``module__dropout`` (dropout before the
        head), ``module__bottleneck`` (a hidden layer of that width, with
        ReLU, between the backbone and the head), ``optimizer__*``,
        ``criterion__*`` (options of the loss), ``iterator_train__*``,
        ``iterator_valid__*`` and ``callbacks__<name>__*``.
    """,
    fitted_attributes="""
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the network, at rest in
        evaluation mode.
    module_ : torch.nn.Module
        The network: ``module_.trunk`` (the backbone) and ``module_.head``.
    history_ : skorch.History
        Losses, scores, learning rates and trainable groups per epoch.
    n_iter_ : int
        Number of epochs run (fewer than ``max_epochs`` after early stopping).
    layer_groups_ : list of str
        Names of the backbone's layer groups, from the stem to the top.
    preprocessing_ : sktransfer.images.Preprocessing
        The resize, crop and normalisation applied at prediction time.
    n_features_in_ : int
        Number of columns of 2-D input (only set for flattened-image input).
    target_features_ : ndarray of shape (n_kept, n_features)
        ``domain_features`` of the target rows (a fixed subsample of at most
        2000), set only when ``fit`` got ``sample_domain``.
    n_source_, n_target_ : int
        Rows of each domain, set only when ``fit`` got ``sample_domain``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a 2-D DataFrame input (only when it has string names).
    """,
    X="""
    X : images
        See :mod:`sktransfer.images` for the accepted forms.
    """,
    sample_weight="""
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights. Split with the validation set, batched, and
        used as a normalised weighted loss (sum of w * loss over sum of w)
        in training and in the validation scores.
    """,
    sample_domain="""
    sample_domain : array-like of shape (n_samples,), default=None
        Positive for source rows, negative for target rows (whose labels are
        ignored: give any value, e.g. -1). With it, only the source rows are
        trained on and validated on, and the fitted model keeps
        ``target_features_`` for the label-free scorers; with ``adaptation``
        every training batch also draws as many target rows. Required when
        ``adaptation`` is set.
    """,
)

"""Small torch networks (an MLP and an LSTM) behind the scikit-learn estimator contract.

Every estimator here trains on the CPU, seeded and deterministic: ``fit`` seeds torch inside a
forked RNG (the global torch RNG is left untouched), turns on
``torch.use_deterministic_algorithms`` and pins torch to one thread, restoring all three
afterwards. Two fits with the same ``random_state`` give bit-identical predictions.

Early stopping watches the loss on a validation set that is the *last* ``validation_fraction``
of the training rows in time order (never a shuffled split, which would leak the future into
model selection). The weights of the best validation epoch are kept.

The learned network lives in ``state_dict_`` as plain NumPy arrays, together with
``module_config_`` (the shapes needed to rebuild it). The torch module is rebuilt from them on
demand, so the estimators pickle with joblib and reload bit for bit, and importing this module
does not import torch (that happens at the first ``fit``/``predict``).

``TorchLSTMRegressor`` and ``TorchLSTMClassifier`` are causal: the prediction for row t reads
rows t-window_bars+1..t of X only. The first ``window_bars - 1`` rows have no full window;
``predict`` (``predict_proba`` for the classifier) returns NaN for them, so its output always
has ``len(X)`` rows, and ``fit`` skips them.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

if TYPE_CHECKING:
    import torch

__all__ = [
    "TorchLSTMClassifier",
    "TorchLSTMRegressor",
    "TorchMLPClassifier",
    "TorchMLPRegressor",
]

_DTYPE = np.float64  # float64 end to end: predictions do not depend on the batch they come in


# ----------------------------------------------------------------------------- torch helpers


@contextlib.contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and one thread; restore all of it on exit."""
    import torch

    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


def _build_module(config: dict[str, Any]) -> torch.nn.Module:
    """The (untrained) torch module described by ``config``, in float64."""
    import torch
    from torch import nn

    if config["kind"] == "mlp":
        layers: list[nn.Module] = []
        width = config["n_inputs"]
        for hidden in config["hidden_sizes"]:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, config["n_outputs"]))
        module: nn.Module = nn.Sequential(*layers)
    elif config["kind"] == "lstm":

        class _LSTMHead(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(
                    config["n_inputs"],
                    config["hidden_size"],
                    num_layers=config["num_layers"],
                    batch_first=True,
                )
                self.head = nn.Linear(config["hidden_size"], config["n_outputs"])

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out, _ = self.lstm(x)
                return self.head(out[:, -1, :])  # the last step sees the whole window

        module = _LSTMHead()
    else:  # pragma: no cover - configs are only written by this module
        raise ValueError(f"unknown module kind {config['kind']!r}")
    return module.to(dtype=torch.float64)


def _forward_numpy(module: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """Run ``module`` in eval mode on ``inputs`` with one thread; float64 NumPy out."""
    import torch

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module.eval()
        with torch.no_grad():
            out = module(torch.from_numpy(np.array(inputs, dtype=_DTYPE, copy=True)))
        return out.numpy().astype(_DTYPE, copy=True)
    finally:
        torch.set_num_threads(prev_threads)


def _train(
    module: torch.nn.Module,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    classification: bool,
    est: _TorchBase,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Adam with early stopping on the time-ordered tail; returns best weights and curves."""
    import torch
    from torch import nn

    n = len(inputs)
    n_val = math.floor(est.validation_fraction * n)
    if n - n_val < 1:
        n_val = 0
    n_train = n - n_val
    x_all = torch.from_numpy(np.array(inputs, dtype=_DTYPE, copy=True))
    y_all = torch.from_numpy(np.array(targets, copy=True))
    x_tr, y_tr, x_va, y_va = x_all[:n_train], y_all[:n_train], x_all[n_train:], y_all[n_train:]
    loss_fn: nn.Module = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    optimizer = torch.optim.Adam(
        module.parameters(), lr=est.learning_rate, weight_decay=est.weight_decay
    )
    batch = min(est.batch_size, n_train)
    loss_curve: list[float] = []
    val_scores: list[float] = []
    best_loss, best_epoch, stale = math.inf, 0, 0
    best_state = copy.deepcopy(module.state_dict())
    for epoch in range(1, est.max_epochs + 1):
        module.train()
        order = torch.from_numpy(rng.permutation(n_train))  # shuffles rows *within* train only
        total = 0.0
        for start in range(0, n_train, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(module(x_tr[idx]), y_tr[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        loss_curve.append(total / n_train)
        if n_val > 0:
            module.eval()
            with torch.no_grad():
                monitored = float(loss_fn(module(x_va), y_va))
            val_scores.append(monitored)
        else:  # too few rows for a validation tail: watch the training loss instead
            monitored = loss_curve[-1]
        if monitored < best_loss:
            best_loss, best_epoch, stale = monitored, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
            if stale >= est.patience:
                break
    module.load_state_dict(best_state)
    return {
        "state": {k: v.detach().numpy().copy() for k, v in module.state_dict().items()},
        "n_epochs": len(loss_curve),
        "best_epoch": best_epoch,
        "loss_curve": loss_curve,
        "validation_scores": val_scores,
    }


# ----------------------------------------------------------------------------- shared base


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class _TorchBase(BaseEstimator):
    """Parameter checks, seeding, scaling and pickling shared by the estimators below."""

    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    validation_fraction: float
    random_state: int | None
    device: str

    def _check_common_params(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("learning_rate", _positive_float(self.learning_rate), "a float > 0, e.g. 1e-3"),
            ("weight_decay", _nonneg_float(self.weight_decay), "a float >= 0, e.g. 0.0"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("max_epochs", _is_int(self.max_epochs) and self.max_epochs >= 1, "an int >= 1"),
            ("patience", _is_int(self.patience) and self.patience >= 1, "an int >= 1"),
            (
                "validation_fraction",
                _nonneg_float(self.validation_fraction) and self.validation_fraction < 1,
                "a float in [0, 1), e.g. 0.1",
            ),
            (
                "random_state",
                self.random_state is None
                or (_is_int(self.random_state) and self.random_state >= 0),
                "None or an int >= 0",
            ),
            ("device", self.device == "cpu", "'cpu' (only the CPU build is supported)"),
        ]
        for field, ok, fix in checks:
            if not ok:
                raise ValueError(f"{field}={getattr(self, field)!r} is invalid; pass {fix}.")

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(0, 2**31 - 1))
        return int(self.random_state)

    def _scale_fit(self, X: np.ndarray) -> np.ndarray:
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)  # constant columns pass through
        return (X - self.x_mean_) / self.x_scale_

    def _scale_target(self, y: np.ndarray) -> np.ndarray:
        """Learn ``y_mean_``/``y_scale_``; the standardised target as a (n, 1) column."""
        self.y_mean_ = float(y.mean())
        y_std = float(y.std())
        self.y_scale_ = y_std if y_std > 0 else 1.0
        return ((y - self.y_mean_) / self.y_scale_)[:, None]

    def _encode_classes(self, y: np.ndarray, *, name: str = "y") -> np.ndarray:
        """Learn ``classes_`` (sorted) and ``class_prior_``; the int64 class codes of ``y``."""
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{name} has 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes."
            )
        codes = encoder.transform(y).astype(np.int64)
        self.class_prior_ = np.bincount(codes, minlength=len(self.classes_)) / len(codes)
        return codes

    def _fit_network(
        self, config: dict[str, Any], inputs: np.ndarray, targets: np.ndarray, *, clf: bool
    ) -> None:
        seed = self._seed()
        with _deterministic_torch(seed):
            module = _build_module(config)
            result = _train(
                module,
                inputs,
                targets,
                classification=clf,
                est=self,
                rng=np.random.default_rng(seed),
            )
        self.module_config_ = config
        self.state_dict_: dict[str, np.ndarray] = result["state"]
        self.n_epochs_: int = result["n_epochs"]
        self.best_epoch_: int = result["best_epoch"]
        self.loss_curve_: list[float] = result["loss_curve"]
        self.validation_scores_: list[float] = result["validation_scores"]
        self._module = self._rebuild()

    def _rebuild(self) -> torch.nn.Module:
        import torch

        with torch.random.fork_rng(devices=[]):  # the discarded init must not consume the RNG
            module = _build_module(self.module_config_)
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state_dict_.items()})
        module.eval()
        return module

    @property
    def model_(self) -> torch.nn.Module:
        """The fitted torch module (rebuilt from ``state_dict_`` after unpickling)."""
        check_is_fitted(self, "state_dict_")
        if getattr(self, "_module", None) is None:
            self._module = self._rebuild()
        return self._module

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state = dict(state)
        state.pop("_module", None)  # only NumPy arrays and plain values get pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "state_dict_" in state:
            self._module = None


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, k) logits; NaN rows stay NaN."""
    logits = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def _positive_float(value: object) -> bool:
    return isinstance(value, int | float | np.number) and math.isfinite(value) and value > 0


def _nonneg_float(value: object) -> bool:
    return isinstance(value, int | float | np.number) and math.isfinite(value) and value >= 0


def _check_hidden_sizes(hidden_sizes: object) -> tuple[int, ...]:
    if (
        isinstance(hidden_sizes, Sequence)
        and not isinstance(hidden_sizes, str)
        and len(hidden_sizes) > 0
        and all(_is_int(h) and h >= 1 for h in hidden_sizes)
    ):
        return tuple(int(h) for h in hidden_sizes)
    raise ValueError(
        f"hidden_sizes={hidden_sizes!r} is invalid; pass a non-empty tuple of ints >= 1, "
        "e.g. (64, 32)."
    )


# ----------------------------------------------------------------------------- MLPs


class _TorchMLPBase(_TorchBase):
    """The MLPs' parameters (scikit-learn reads them from this ``__init__``)."""

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        *,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        random_state: int | None = 0,
        device: str = "cpu",
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device


class TorchMLPRegressor(RegressorMixin, _TorchMLPBase):
    """A feed-forward ReLU network regressor trained with Adam and early stopping.

    Parameters
    ----------
    hidden_sizes : tuple of int, default (64,)
        Width of each hidden layer.
    learning_rate : float, default 1e-3
        Adam step size.
    weight_decay : float, default 0.0
        Adam L2 penalty.
    batch_size : int, default 64
        Rows per gradient step (capped at the number of training rows).
    max_epochs : int, default 200
        Upper bound on passes over the training rows.
    patience : int, default 10
        Epochs without a better validation loss before training stops.
    validation_fraction : float, default 0.1
        The last fraction of the rows, in the order given, held out for early stopping. With
        0 (or too few rows) the training loss is monitored instead.
    random_state : int or None, default 0
        Seed for weight initialisation and batch order; None draws a fresh seed.
    device : str, default "cpu"
        Only "cpu" is supported.

    Attributes
    ----------
    n_features_in_ : int
    x_mean_, x_scale_ : ndarray of shape (n_features_in_,)
        Standardisation learned from X.
    y_mean_, y_scale_ : float
        Standardisation learned from y.
    state_dict_ : dict of str to ndarray
        The best epoch's weights.
    module_config_ : dict
        Shapes needed to rebuild the torch module.
    n_epochs_, best_epoch_ : int
        Epochs run, and the (1-based) epoch whose weights were kept.
    loss_curve_, validation_scores_ : list of float
        Training and validation loss (MSE on the standardised target) per epoch.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5])
    >>> model = TorchMLPRegressor(hidden_sizes=(16,), learning_rate=1e-2, max_epochs=50)
    >>> model.fit(X, y).score(X, y) > 0.9
    True
    >>> model.predict(X[:2]).shape
    (2,)
    """

    def fit(self, X: Any, y: Any) -> TorchMLPRegressor:
        """Fit on X of shape (n_samples, n_features) and y of shape (n_samples,)."""
        hidden = _check_hidden_sizes(self.hidden_sizes)
        self._check_common_params()
        X, y = validate_data(self, X, y, dtype=_DTYPE, y_numeric=True)
        y = np.asarray(y, dtype=_DTYPE)
        inputs = self._scale_fit(X)
        targets = self._scale_target(y)
        config = {"kind": "mlp", "n_inputs": X.shape[1], "hidden_sizes": hidden, "n_outputs": 1}
        self._fit_network(config, inputs, targets, clf=False)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,)."""
        check_is_fitted(self, "state_dict_")
        X = validate_data(self, X, dtype=_DTYPE, reset=False)
        out = _forward_numpy(self.model_, (X - self.x_mean_) / self.x_scale_)[:, 0]
        return out * self.y_scale_ + self.y_mean_


class TorchMLPClassifier(ClassifierMixin, _TorchMLPBase):
    """A feed-forward ReLU network classifier (softmax, cross-entropy) with early stopping.

    Parameters are those of `TorchMLPRegressor`. Labels may be any hashable values; ``classes_``
    holds them sorted (``class_prior_`` their frequencies), and ``predict_proba`` columns
    follow that order. The validation loss is the cross-entropy on the time-ordered tail.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    >>> model = TorchMLPClassifier(hidden_sizes=(8,), learning_rate=1e-2, max_epochs=50)
    >>> model.fit(X, y).score(X, y) > 0.9
    True
    >>> model.classes_.tolist(), model.predict_proba(X[:3]).shape
    (['down', 'up'], (3, 2))
    """

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        """Fit on X of shape (n_samples, n_features) and labels y of shape (n_samples,)."""
        hidden = _check_hidden_sizes(self.hidden_sizes)
        self._check_common_params()
        X, y = validate_data(self, X, y, dtype=_DTYPE)
        targets = self._encode_classes(y)
        inputs = self._scale_fit(X)
        config = {
            "kind": "mlp",
            "n_inputs": X.shape[1],
            "hidden_sizes": hidden,
            "n_outputs": len(self.classes_),
        }
        self._fit_network(config, inputs, targets, clf=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self, "state_dict_")
        X = validate_data(self, X, dtype=_DTYPE, reset=False)
        return _softmax(_forward_numpy(self.model_, (X - self.x_mean_) / self.x_scale_))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, shape (n_samples,)."""
        check_is_fitted(self, "state_dict_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# ----------------------------------------------------------------------------- LSTM


def _windows(X: np.ndarray, window_bars: int) -> np.ndarray:
    """Trailing windows: row i of the result is X[i : i + window_bars], shape (n-w+1, w, f)."""
    view = np.lib.stride_tricks.sliding_window_view(X, window_bars, axis=0)  # (n-w+1, f, w)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


class _TorchLSTMBase(_TorchBase):
    """The LSTMs' parameters, windowing and causal forward pass (shared by both tasks)."""

    def __init__(
        self,
        window_bars: int = 16,
        *,
        hidden_size: int = 32,
        num_layers: int = 1,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 200,
        patience: int = 10,
        validation_fraction: float = 0.1,
        random_state: int | None = 0,
        device: str = "cpu",
    ) -> None:
        self.window_bars = window_bars
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _fit_windows(self, X: Any, y: Any, *, y_numeric: bool) -> tuple[np.ndarray, np.ndarray]:
        """Check parameters and data; the scaled windows and the y of rows with a full window."""
        for field in ("window_bars", "hidden_size", "num_layers"):
            value = getattr(self, field)
            if not (_is_int(value) and value >= 1):
                raise ValueError(f"{field}={value!r} is invalid; pass an int >= 1.")
        self._check_common_params()
        X, y = validate_data(self, X, y, dtype=_DTYPE, y_numeric=y_numeric)
        if len(X) < self.window_bars:
            raise ValueError(
                f"window_bars={self.window_bars} exceeds the {len(X)} rows of X; "
                "pass more rows or a smaller window_bars."
            )
        windows = _windows(self._scale_fit(X), self.window_bars)
        return windows, y[self.window_bars - 1 :]  # rows without a full window are skipped

    def _fit_lstm(
        self, windows: np.ndarray, targets: np.ndarray, *, n_outputs: int, clf: bool
    ) -> None:
        config = {
            "kind": "lstm",
            "n_inputs": windows.shape[2],
            "hidden_size": int(self.hidden_size),
            "num_layers": int(self.num_layers),
            "n_outputs": n_outputs,
            "window_bars": int(self.window_bars),
        }
        self._fit_network(config, windows, targets, clf=clf)

    def _forward_rows(self, X: Any) -> np.ndarray:
        """Network outputs, shape (n_samples, n_outputs); NaN rows where no full window."""
        check_is_fitted(self, "state_dict_")
        X = validate_data(self, X, dtype=_DTYPE, reset=False)
        window = self.module_config_["window_bars"]  # as fitted, even after set_params
        out = np.full((len(X), self.module_config_["n_outputs"]), np.nan)
        if len(X) >= window:
            windows = _windows((X - self.x_mean_) / self.x_scale_, window)
            out[window - 1 :] = _forward_numpy(self.model_, windows)
        return out


class TorchLSTMRegressor(RegressorMixin, _TorchLSTMBase):
    """An LSTM regressor over a trailing window of ``window_bars`` rows of X (causal).

    Rows of X must be in time order. The prediction for row t reads rows
    t-window_bars+1..t only, through the LSTM's last hidden state and a linear head. The first
    ``window_bars - 1`` rows have no full window: ``fit`` skips them and ``predict`` returns NaN
    there, so ``predict(X)`` always has ``len(X)`` values. To predict a test block that follows
    the training rows, pass the last ``window_bars - 1`` training rows in front of it.

    Parameters
    ----------
    window_bars : int, default 16
        Rows per input window (the current row included).
    hidden_size : int, default 32
        LSTM hidden state width.
    num_layers : int, default 1
        Stacked LSTM layers.
    learning_rate, weight_decay, batch_size, max_epochs, patience, validation_fraction, \
random_state, device
        As in `TorchMLPRegressor`; batches and the validation tail count windows.

    Attributes
    ----------
    As in `TorchMLPRegressor`; ``x_mean_``/``x_scale_`` come from all rows of X in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 1))
    >>> y = np.roll(x[:, 0], 2)  # y_t = x_{t-2}
    >>> model = TorchLSTMRegressor(window_bars=4, hidden_size=8, learning_rate=1e-2)
    >>> pred = model.fit(x, y).predict(x)  # doctest: +SKIP
    >>> pred.shape, bool(np.isnan(pred[:3]).all())  # doctest: +SKIP
    ((300,), True)
    """

    def fit(self, X: Any, y: Any) -> TorchLSTMRegressor:
        """Fit on time-ordered X (n_samples, n_features) and y (n_samples,)."""
        windows, y = self._fit_windows(X, y, y_numeric=True)
        targets = self._scale_target(np.asarray(y, dtype=_DTYPE))
        self._fit_lstm(windows, targets, n_outputs=1, clf=False)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of shape (n_samples,), NaN on the first ``window_bars - 1`` rows."""
        return self._forward_rows(X)[:, 0] * self.y_scale_ + self.y_mean_


class TorchLSTMClassifier(ClassifierMixin, _TorchLSTMBase):
    """An LSTM classifier (softmax, cross-entropy) over a trailing window of X (causal).

    The sequence model of `TorchLSTMRegressor` with the class head of `TorchMLPClassifier`:
    rows of X in time order, the prediction for row t reads rows t-window_bars+1..t only,
    labels may be any hashable values, ``classes_`` holds them sorted and ``predict_proba``
    columns follow that order. The validation loss is the cross-entropy on the time-ordered
    tail of the windows.

    The first ``window_bars - 1`` rows have no full window: ``fit`` skips them (``classes_``
    and ``class_prior_`` come from the rows it fits), ``predict_proba`` returns NaN rows there,
    and ``predict`` returns the most frequent fitted class there (the mode of
    ``class_prior_``), so drop those rows before scoring. To predict a test block that
    follows the training rows, pass the last ``window_bars - 1`` training rows in front of it.

    Parameters are those of `TorchLSTMRegressor`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted labels of the fitted rows.
    class_prior_ : ndarray of shape (n_classes,)
        Their frequencies among the fitted rows.
    Others as in `TorchMLPRegressor`, without ``y_mean_``/``y_scale_``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(400, 1))
    >>> y = np.where(np.roll(x[:, 0], 2) > 0, "up", "down")  # the sign of x_{t-2}
    >>> model = TorchLSTMClassifier(window_bars=4, hidden_size=8, learning_rate=1e-2)
    >>> proba = model.fit(x, y).predict_proba(x)  # doctest: +SKIP
    >>> model.classes_.tolist(), proba.shape, bool(np.isnan(proba[:3]).all())  # doctest: +SKIP
    (['down', 'up'], (400, 2), True)
    """

    def fit(self, X: Any, y: Any) -> TorchLSTMClassifier:
        """Fit on time-ordered X (n_samples, n_features) and labels y (n_samples,)."""
        windows, y = self._fit_windows(X, y, y_numeric=False)
        name = f"y[window_bars - 1:] (window_bars={self.window_bars})"
        targets = self._encode_classes(y, name=name)
        self._fit_lstm(windows, targets, n_outputs=len(self.classes_), clf=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), NaN on the first
        ``window_bars - 1`` rows; columns in ``classes_`` order."""
        return _softmax(self._forward_rows(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, shape (n_samples,); the mode of
        ``class_prior_`` on the first ``window_bars - 1`` rows."""
        proba = self.predict_proba(X)
        codes = np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)
        codes[np.isnan(proba[:, 0])] = int(np.argmax(self.class_prior_))
        return self.classes_[codes]

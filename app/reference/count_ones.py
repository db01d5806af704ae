"""A linear RNN that counts the ones in a binary sequence (seed 004, after Peter Roelants), trained with Rprop.

Notation of the document. Inputs X (samples, n) of 0/1, targets t = Σ_k X_k per sample; one scalar state:

    S_k = X_k · w_x + S_{k-1} · w_rec,   S_0 = 0,   k = 1 … n,      y = S_n
    ξ   = (1/N) Σ_samples (t − y)²                                     (MSE over the N samples)

Backpropagation through time (the unfolded network is n layers sharing w_x and w_rec):

    ∂ξ/∂y = ∂ξ/∂S_n = 2 (y − t) / N
    ∂ξ/∂S_{k-1} = ∂ξ/∂S_k · w_rec
    ∂ξ/∂w_x   = Σ_k Σ_samples ∂ξ/∂S_k · X_k
    ∂ξ/∂w_rec = Σ_k Σ_samples ∂ξ/∂S_k · S_{k-1}

so a gradient reaching back m steps is scaled by w_rec^m: it explodes for |w_rec| > 1 and vanishes for |w_rec| < 1.
Rprop uses only the sign of each gradient: Δ_i ← Δ_i · η+ if sign(∂ξ/∂w_i) equals the previous sign, else
Δ_i · η−, then w_i ← w_i − sign(∂ξ/∂w_i) · Δ_i, with η+ = 1.2, η− = 0.5, Δ starting at 0.001 and the "previous
sign" at 0 (so the first step halves Δ, as in the document). The optimum is w_x = w_rec = 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ETA_P, ETA_N = 1.2, 0.5


def make_dataset(rng: np.random.Generator, samples: int = 20, length: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """X (samples, length) of 0/1 floats, t (samples,) = number of ones per row."""
    X = rng.integers(0, 2, size=(samples, length)).astype(np.float64)
    return X, X.sum(axis=1)


def forward_states(X: np.ndarray, wx: float, wRec: float) -> np.ndarray:
    """All states S (samples, n + 1), S[:, 0] = 0; the output y is S[:, -1]."""
    S = np.zeros((X.shape[0], X.shape[1] + 1))
    for k in range(X.shape[1]):
        S[:, k + 1] = X[:, k] * wx + S[:, k] * wRec
    return S


def cost(y: np.ndarray, t: np.ndarray) -> float:
    """ξ = MSE over the samples."""
    return float(((t - y) ** 2).sum() / len(t))


def output_gradient(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """∂ξ/∂y = 2 (y − t) / N."""
    return 2.0 * (y - t) / len(t)


def backward_gradient(X: np.ndarray, S: np.ndarray, grad_out: np.ndarray, wRec: float):
    """-> ((∂ξ/∂w_x, ∂ξ/∂w_rec), ∂ξ/∂S_k for every k as (samples, n + 1))."""
    grad_over_time = np.zeros((X.shape[0], X.shape[1] + 1))
    grad_over_time[:, -1] = grad_out
    wx_grad = wRec_grad = 0.0
    for k in range(X.shape[1], 0, -1):
        wx_grad += float(np.sum(grad_over_time[:, k] * X[:, k - 1]))
        wRec_grad += float(np.sum(grad_over_time[:, k] * S[:, k - 1]))
        grad_over_time[:, k - 1] = grad_over_time[:, k] * wRec
    return (wx_grad, wRec_grad), grad_over_time


def loss_and_gradient(X: np.ndarray, t: np.ndarray, wx: float, wRec: float) -> tuple[float, np.ndarray]:
    S = forward_states(X, wx, wRec)
    grads, _ = backward_gradient(X, S, output_gradient(S[:, -1], t), wRec)
    return cost(S[:, -1], t), np.array(grads)


def numerical_gradient(X: np.ndarray, t: np.ndarray, wx: float, wRec: float, eps: float = 1e-7) -> np.ndarray:
    """Central differences (ξ(w + ε) − ξ(w − ε)) / 2ε for each weight, as in the document's gradient check."""
    w = np.array([wx, wRec], dtype=np.float64)
    out = np.zeros(2)
    for i in range(2):
        d = np.zeros(2)
        d[i] = eps
        plus = cost(forward_states(X, *(w + d))[:, -1], t)
        minus = cost(forward_states(X, *(w - d))[:, -1], t)
        out[i] = (plus - minus) / (2 * eps)
    return out


def rprop(X: np.ndarray, t: np.ndarray, w0=(-1.5, 2.0), iterations: int = 500, eta_p: float = ETA_P,
          eta_n: float = ETA_N, delta0: float = 0.001) -> np.ndarray:
    """Rprop from w0 = (w_x, w_rec); returns the path, shape (iterations + 1, 2), path[-1] the final weights."""
    w = np.array(w0, dtype=np.float64)
    delta = np.full(2, delta0)
    prev_sign = np.zeros(2)
    path = [w.copy()]
    for _ in range(iterations):
        _, grad = loss_and_gradient(X, t, w[0], w[1])
        sign = np.sign(grad)
        delta = np.where(sign == prev_sign, delta * eta_p, delta * eta_n)
        w = w - sign * delta
        prev_sign = sign
        path.append(w.copy())
    return np.array(path)


def cost_surface(X: np.ndarray, t: np.ndarray, lo: float, hi: float, n: int = 100):
    """Grid of ξ over w_x (columns) and w_rec (rows) in [lo, hi]²: (ws1, ws2, costs), each (n, n)."""
    ws1, ws2 = np.meshgrid(np.linspace(lo, hi, n), np.linspace(lo, hi, n))
    S = np.zeros(ws1.shape + (X.shape[0],))  # the recurrence for every grid point at once
    for k in range(X.shape[1]):
        S = X[:, k] * ws1[..., None] + S * ws2[..., None]
    costs = ((t - S) ** 2).sum(axis=-1) / len(t)
    return ws1, ws2, costs


def plot_rprop_path(X: np.ndarray, t: np.ndarray, path: np.ndarray, out_path: str | Path) -> Path:
    """The document's figure: ξ + 1 on log-spaced contours over [−3, 3]² and a zoom on [0, 2]², Rprop path in blue.

    Uses matplotlib's object API (no pyplot state), so it runs headless.
    """
    from matplotlib import cm
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    levels = np.logspace(-0.2, 8, 30)
    surf = None
    for pos, (lo, hi) in enumerate(((-3.0, 3.0), (0.0, 2.0)), start=1):
        ax = fig.add_subplot(1, 2, pos)
        ws1, ws2, costs = cost_surface(X, t, lo, hi)
        s = ax.contourf(ws1, ws2, costs + 1, levels=levels, cmap=cm.pink, norm=LogNorm())
        surf = s if surf is None else surf
        ax.plot(path[:, 0], path[:, 1], "b.", markersize=3)
        ax.plot(path[-1, 0], path[-1, 1], "c*", markersize=10)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("$w_{x}$", fontsize=13)
        ax.set_ylabel("$w_{rec}$", fontsize=13)
    fig.subplots_adjust(right=0.8, wspace=0.3)
    cax = fig.add_axes([0.85, 0.12, 0.03, 0.78])
    cbar = fig.colorbar(surf, ticks=np.logspace(0, 8, 9), cax=cax)
    cbar.ax.set_ylabel(r"$\xi$", fontsize=15)
    cbar.set_ticklabels([f"{v:.0e}" for v in np.logspace(0, 8, 9)])
    fig.suptitle(f"Cost surface and Rprop path ({len(path) - 1} iterations, final w_x = {path[-1, 0]:.4f}, "
                 f"w_rec = {path[-1, 1]:.4f})", fontsize=11)
    out = Path(out_path)
    fig.savefig(out, dpi=100)
    return out

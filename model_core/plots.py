"""Small PNG plots of the diagnostics, as bytes (Dagster metadata, HTML / markdown reports).

Figures are built with matplotlib's object API (`Figure`, rendered by the Agg canvas), never
through pyplot: pyplot keeps a process-wide registry of open figures and a current backend,
which leaks memory and is not thread-safe in a long-lived service, and a GUI backend would
fail on a headless host. A Figure that no registry holds is freed with its last reference.
Every plot is about 6 x 2.8 inches at 80 dpi: a few tens of KB, fine inline.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model_core.diagnostics import rolling_sharpe

FIGSIZE = (6.0, 2.8)  # inches
DPI = 80
MAX_ERA_TICKS = 8
POSITIVE, NEGATIVE = "#2e7d32", "#c62828"


def cumulative_corr_png(eras: Sequence[str], series: Mapping[str, Sequence[float]]) -> bytes:
    """Cumulative per-era CORR, one line per model; a NaN era adds 0."""
    fig, ax = _figure()
    for name, values in series.items():
        corrs = _per_era(values, eras, name)
        ax.plot(np.cumsum(np.nan_to_num(corrs, nan=0.0)), label=name, linewidth=1.2)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    _era_axis(ax, eras)
    ax.set(title="Cumulative CORR", ylabel="cumulative CORR")
    _legend(ax, series)
    return _png(fig)


def per_era_corr_png(eras: Sequence[str], corrs: Sequence[float]) -> bytes:
    """CORR of each era as bars: green above zero, red below."""
    fig, ax = _figure()
    values = _per_era(corrs, eras, "corrs")
    colours = [POSITIVE if v >= 0 else NEGATIVE for v in np.nan_to_num(values)]
    ax.bar(np.arange(len(values)), values, color=colours, width=0.9)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    _era_axis(ax, eras)
    ax.set(title="CORR per era", ylabel="CORR")
    return _png(fig)


def rolling_sharpe_png(eras: Sequence[str], series: Mapping[str, Sequence[float]], window: int) -> bytes:
    """Rolling Sharpe of the per-era CORR (diagnostics.rolling_sharpe), one line per model."""
    fig, ax = _figure()
    for name, values in series.items():
        ax.plot(rolling_sharpe(_per_era(values, eras, name), window), label=name, linewidth=1.2)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    _era_axis(ax, eras)
    ax.set(title=f"Rolling Sharpe of CORR ({window} eras)", ylabel="mean / std")
    _legend(ax, series)
    return _png(fig)


def importance_png(importance: Mapping[str, float]) -> bytes:
    """Permutation importance per feature group as horizontal bars, largest on top."""
    fig, ax = _figure()
    items = sorted(importance.items(), key=lambda kv: np.nan_to_num(kv[1], nan=-np.inf))
    values = [v for _, v in items]
    ax.barh(
        np.arange(len(items)),
        values,
        color=[POSITIVE if v >= 0 else NEGATIVE for v in np.nan_to_num(values)],
    )
    ax.set_yticks(np.arange(len(items)), [name for name, _ in items], fontsize=7)
    ax.axvline(0.0, color="grey", linewidth=0.6)
    ax.set(title="Permutation importance", xlabel="drop in mean CORR when shuffled")
    return _png(fig)


def cross_attention_png(matrix: np.ndarray) -> bytes:
    """Heatmap of attention_summary.cross_attention_by_decile: rows read, columns are read."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"cross attention must be a (bins, bins) matrix with bins >= 2, got shape {m.shape}")
    bins = m.shape[0]
    fig, ax = _figure()
    image = ax.imshow(m, cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=ax, label="attention share")
    ticks = [0, bins - 1]
    ax.set_xticks(ticks, ["low prediction", "high"], fontsize=7)
    ax.set_yticks(ticks, ["low prediction", "high"], fontsize=7)
    ax.set(
        title="Cross-stock attention by prediction decile",
        xlabel="decile read",
        ylabel="decile reading",
    )
    return _png(fig)


def temporal_attention_png(by_lag: np.ndarray) -> bytes:
    """Attention on each past resolved era, lag 1 = the most recent one."""
    values = np.asarray(by_lag, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"attention by lag must be a non-empty (K,) array, got shape {values.shape}")
    fig, ax = _figure()
    lags = np.arange(1, values.size + 1)
    ax.bar(lags, values, color="#1565c0")
    ax.set_xticks(lags)
    ax.set(
        title="Attention on past resolved eras",
        xlabel="lag (1 = most recent resolved era)",
        ylabel="attention share",
    )
    return _png(fig)


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()  # drop the artists now; the figure itself is in no registry (no pyplot)
    return buffer.getvalue()


def _per_era(values: Sequence[float], eras: Sequence[str], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (len(eras),):
        raise ValueError(f"{name!r}: {array.shape} values for {len(eras)} eras; one value per era is needed")
    return array


def _era_axis(ax: Axes, eras: Sequence[str]) -> None:
    step = max(1, -(-len(eras) // MAX_ERA_TICKS))
    positions = np.arange(0, len(eras), step)
    ax.set_xticks(positions, [eras[i] for i in positions], fontsize=7)
    ax.set_xlabel("era")


def _legend(ax: Axes, series: Mapping[str, Sequence[float]]) -> None:
    if series:
        ax.legend(fontsize=7, loc="best")

"""Consumers ``consumers``: the replenishment consumer's forecasts for every SKU of 1,000 shops.

1,000 shops x 300 SKUs with a year of daily sales, drawn with numpy: most
SKUs sell a unit every few days, some sell every day with a weekly rhythm
and a slow trend. The consumer's pipeline (a 14-day backtest of every
candidate model, the best per SKU, then 14 days ahead) runs over batches of
shops, as a consumer refreshing all its shops would; seasonal naive alone
runs over the same series in the same run as the baseline, for seconds and
for accuracy (MASE, the backtest's error over seasonal naive's in-sample error).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import SeasonalNaive
from utilsforecast.losses import mase

from bench.common import Size, report
from cornerstore_consumers.replenishment import forecast as demand

FIRST_DAY = "2025-12-01"


def _sales(shops: int, skus: int, days: int, seed: int) -> pd.DataFrame:
    """Daily units sold per (shop, SKU): rates from 1 in 20 days to 20 a day, weekly rhythm."""
    rng = np.random.default_rng(seed)
    series = shops * skus
    rate = np.exp(rng.uniform(np.log(0.05), np.log(20), series))
    weekly = 1 + rng.uniform(0, 0.6, series)[:, None] * np.sin(
        2 * np.pi * (np.arange(days)[None, :] + rng.integers(0, 7, series)[:, None]) / 7
    )
    trend = 1 + rng.normal(0, 0.3, series)[:, None] * np.arange(days)[None, :] / days
    units = rng.poisson(np.clip(rate[:, None] * weekly * trend, 0, None))
    ids = np.array([f"{s}:{k}" for s in range(shops) for k in range(skus)])
    return pd.DataFrame(
        {
            "unique_id": np.repeat(ids, days),
            "ds": np.tile(pd.date_range(FIRST_DAY, periods=days, freq="D").to_numpy(), series),
            "y": units.ravel().astype(float),
        }
    )


def _baseline(history: pd.DataFrame, cores: int) -> pd.DataFrame:
    """Seasonal naive alone: its backtest MASE per series."""
    engine = StatsForecast(
        models=[SeasonalNaive(season_length=demand.SEASON)], freq="D", n_jobs=cores
    )
    held_out = engine.cross_validation(
        h=demand.HORIZON, df=history, n_windows=1, step_size=demand.HORIZON
    )
    engine.forecast(h=demand.HORIZON, df=history)
    train = history[history["ds"] <= held_out["cutoff"].min()]
    scored: pd.DataFrame = mase(
        held_out, models=[demand.BASELINE], seasonality=demand.SEASON, train_df=train
    )
    return scored


def run(size: Size) -> dict[str, float]:
    shops = size.pick(4, 1_000)
    skus = size.pick(20, 300)
    days = size.pick(120, 365)
    batch = size.pick(2, 50)
    cores = os.cpu_count() or 1
    ours = base = 0.0
    choices, baselines = [], []
    for first in range(0, shops, batch):
        history = _sales(min(batch, shops - first), skus, days, seed=first)
        started = time.perf_counter()
        forecasts = demand.forecast(history, n_jobs=cores)
        ours += time.perf_counter() - started
        choices.append(forecasts.choices)
        started = time.perf_counter()
        baselines.append(_baseline(history, cores))
        base += time.perf_counter() - started
    chosen = pd.concat(choices, ignore_index=True)
    naive = pd.concat(baselines, ignore_index=True).replace([np.inf], np.nan)
    by_class = chosen.groupby("sku_class")[["mase", "baseline_mase"]].mean()
    counts = {str(k): int(v) for k, v in chosen["sku_class"].value_counts().items()}
    models = ", ".join(f"{m} {n:,}" for m, n in chosen["model"].value_counts().items())
    series = shops * skus
    rows = [
        ("series (shop x SKU), days each", f"{series:,} x {days}"),
        (
            "forecast: backtest, choose, 14 days ahead",
            f"{ours:8.1f} s   ({series / ours:,.0f} series/s)",
        ),
        ("baseline: seasonal naive alone", f"{base:8.1f} s"),
        ("ratio (baseline / ours)", f"{base / ours:8.2f}x"),
        ("MASE, chosen models (all SKUs)", f"{chosen['mase'].mean():8.3f}"),
        ("MASE, seasonal naive (all SKUs)", f"{naive[demand.BASELINE].mean():8.3f}"),
    ]
    for sku_class, row in by_class.iterrows():
        rows.append(
            (
                f"MASE {sku_class} ({counts[str(sku_class)]:,} SKUs): chosen / naive",
                f"{row['mase']:8.3f} / {row['baseline_mase']:.3f}",
            )
        )
    rows.append(("models chosen", models))
    report(f"consumers: replenishment forecasts, {shops:,} shops x {skus} SKUs x {days} days", rows)
    return {
        "consumers_forecast_s": ours,
        "consumers_baseline_s": base,
        "consumers_mase": float(chosen["mase"].mean()),
        "consumers_baseline_mase": float(naive[demand.BASELINE].mean()),
    }

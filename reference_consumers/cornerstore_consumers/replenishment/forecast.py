"""Demand forecasts per SKU for the next 14 days, each SKU's model chosen by its backtest.

Corner-shop SKUs mostly sell a few units a day with many zero days, where
ordinary smoothing forecasts badly; a few sell every day with a weekly rhythm.
So every SKU is backtested (its last 14 days held out) with statsforecast's
intermittent-demand models (Croston, Croston SBA, TSB, ADIDA) and, for the SKUs
that sell most days, a seasonal exponential smoothing with a weekly season;
each SKU keeps the model with the lowest backtest error, refitted on all its
history for the forecast.

Accuracy is reported as MASE (utilsforecast): the backtest's mean absolute
error over the in-sample error of a seasonal naive forecast (the same weekday
last week). Below 1 beats that naive rule. The seasonal naive forecast is
also backtested itself, so its MASE is printed beside the chosen models'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    TSB,
    CrostonClassic,
    CrostonSBA,
    SeasonalExponentialSmoothingOptimized,
    SeasonalNaive,
)
from utilsforecast.losses import mae, mase

HORIZON = 14
SEASON = 7
#: Syntetos and Boylan's cut-off: a SKU selling on fewer than 1 day in 1.32 is intermittent.
INTERMITTENT_ADI = 1.32

INTERMITTENT = ("CrostonClassic", "CrostonSBA", "TSB", "ADIDA")
SEASONAL = "SeasESOpt"
BASELINE = "SeasonalNaive"


def _models() -> list[object]:
    return [
        CrostonClassic(),
        CrostonSBA(),
        TSB(alpha_d=0.2, alpha_p=0.2),
        ADIDA(),
        SeasonalExponentialSmoothingOptimized(season_length=SEASON),
        SeasonalNaive(season_length=SEASON),
    ]


@dataclass(frozen=True)
class Forecasts:
    """Per SKU (``unique_id``): its class, chosen model, backtest errors and daily forecast."""

    #: unique_id, sku_class, model, mae, rmse, mase, baseline_mase
    choices: pd.DataFrame
    #: unique_id, ds, demand: the chosen model's forecast for each of the next days.
    demand: pd.DataFrame

    def mase_by_class(self) -> pd.DataFrame:
        """Mean MASE of the chosen models and of seasonal naive, per SKU class."""
        return (
            self.choices.groupby("sku_class")[["mase", "baseline_mase"]]
            .mean()
            .assign(skus=self.choices.groupby("sku_class").size())
        )


def classify(history: pd.DataFrame) -> pd.Series:
    """``intermittent`` or ``fast`` per unique_id, by the average interval between sales days."""
    selling = history.assign(sold=history["y"] > 0).groupby("unique_id")["sold"]
    adi = selling.size() / selling.sum().clip(lower=1)
    return pd.Series(
        np.where(adi > INTERMITTENT_ADI, "intermittent", "fast"), index=adi.index, name="sku_class"
    )


def fill_days(history: pd.DataFrame) -> pd.DataFrame:
    """Every day from each SKU's first sale to the last day of all, zero where none sold.

    Sales come as lines; days without a line are days nothing sold, and the
    models need them as zeros.
    """
    daily = history.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    end = daily["ds"].max()
    spans = daily.groupby("unique_id")["ds"].min()
    full = pd.concat(
        pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, end, freq="D")})
        for uid, start in spans.items()
    )
    return full.merge(daily, how="left", on=["unique_id", "ds"]).fillna({"y": 0.0})


def forecast(history: pd.DataFrame, *, n_jobs: int = 1) -> Forecasts:
    """Choose each SKU's model by a 14-day backtest, then forecast 14 days with it.

    ``history`` has one row per SKU and day (``unique_id``, ``ds``, ``y`` units
    sold), zeros included (:func:`fill_days`). SKUs with less than 35 days of
    history (two horizons and a week) get no backtest and fall back to Croston
    SBA (their MASE is not reported).
    """
    classes = classify(history)
    lengths = history.groupby("unique_id").size()
    tested_ids = lengths.index[lengths >= 2 * HORIZON + SEASON]
    engine = StatsForecast(models=_models(), freq="D", n_jobs=n_jobs)
    tested = history[history["unique_id"].isin(tested_ids)]
    names = [*INTERMITTENT, SEASONAL, BASELINE]
    if len(tested_ids):
        held_out = engine.cross_validation(h=HORIZON, df=tested, n_windows=1, step_size=HORIZON)
        train = tested[tested["ds"] <= held_out["cutoff"].min()]
        errors = mae(held_out, models=names).set_index("unique_id")
        scaled = mase(held_out, models=names, seasonality=SEASON, train_df=train)
        scaled = scaled.set_index("unique_id").replace([np.inf], np.nan)
        squared = held_out[names].sub(held_out["y"], axis=0).pow(2)
        rmse = squared.groupby(held_out["unique_id"]).mean().pow(0.5)
    else:
        errors = scaled = rmse = pd.DataFrame(columns=names)
    choices = _choose(classes, errors.reindex(classes.index), rmse, scaled)
    parts = []
    if len(tested):
        parts.append(engine.forecast(h=HORIZON, df=tested))
    short = history[~history["unique_id"].isin(tested_ids)]
    if len(short):
        # Too short for a backtest, or a weekly season: Croston SBA alone.
        fallback = StatsForecast(models=[CrostonSBA()], freq="D", n_jobs=n_jobs)
        parts.append(fallback.forecast(h=HORIZON, df=short))
    ahead = pd.concat(parts, ignore_index=True).merge(choices[["unique_id", "model"]])
    picked = _pick(ahead, pd.RangeIndex(len(ahead)), ahead["model"])
    demand = ahead[["unique_id", "ds"]].assign(demand=np.clip(picked, 0.0, None))
    return Forecasts(choices, demand)


def _pick(table: pd.DataFrame, rows: pd.Index, models: pd.Series) -> np.ndarray:
    """Each row's value in the column its model names (NaN where the row has none)."""
    columns = [*INTERMITTENT, SEASONAL, BASELINE]
    values = table.reindex(index=rows, columns=columns).to_numpy(float)
    return values[np.arange(len(rows)), [columns.index(m) for m in models]]


def _choose(
    classes: pd.Series, errors: pd.DataFrame, rmse: pd.DataFrame, scaled: pd.DataFrame
) -> pd.DataFrame:
    """Per SKU, the allowed model with the least backtest error (Croston SBA if untested)."""
    candidates = errors.reindex(columns=[*INTERMITTENT, SEASONAL]).astype(float)
    candidates.loc[classes != "fast", SEASONAL] = np.inf  # seasonal models for fast movers only
    tested = candidates.notna().all(axis=1)
    best = candidates.fillna(np.inf).idxmin(axis=1).astype(str)
    models = best.where(tested, "CrostonSBA")
    ids = classes.index
    return pd.DataFrame(
        {
            "unique_id": ids,
            "sku_class": classes.to_numpy(),
            "model": models.to_numpy(),
            "mae": _pick(errors, ids, models),
            "rmse": _pick(rmse, ids, models),
            "mase": _pick(scaled, ids, models),
            "baseline_mase": _pick(scaled, ids, pd.Series(BASELINE, index=ids)),
        }
    )

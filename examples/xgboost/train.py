#!/usr/bin/python3
"""An XGBoost trainer for Driftline's command trainer (docs/models.md, "Command trainers").

    driftline trainer --task-queue python --command xgboost='/usr/bin/python3 examples/xgboost/train.py'

and in the model's spec:

    trainer: {name: command, command: xgboost, task_queue: python,
              params: {num_boost_round: 300, max_depth: 4, eta: 0.1, early_stopping_rounds: 20}}

It reads the run's rows ($DRIFTLINE_TRAIN, $DRIFTLINE_VALIDATION: CSV, a header of the
features and the target, a missing value empty), trains with early stopping on the validation
rows, and saves the booster as XGBoost JSON ($DRIFTLINE_OUTPUT_DIR/model.json) with its feature
names, and metrics.json. Only Debian's packages: python3-xgboost, python3-numpy.
"""
import json
import os
import sys

import numpy as np
import xgboost as xgb


def read(path, features, target):
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header != features + [target]:
        sys.exit(f"{path}: header {header}, expected {features + [target]}")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, missing_values="", filling_values=np.nan, ndmin=2)
    return xgb.DMatrix(data[:, :-1], label=data[:, -1], feature_names=features, missing=np.nan), data[:, -1]


def main():
    features = os.environ["DRIFTLINE_FEATURES"].split(",")
    target = os.environ["DRIFTLINE_TARGET"]
    params = json.loads(os.environ.get("DRIFTLINE_PARAMS") or "{}")
    dtrain, y = read(os.environ["DRIFTLINE_TRAIN"], features, target)
    dvalid, yv = read(os.environ["DRIFTLINE_VALIDATION"], features, target)
    print(f"training on {len(y)} rows, validating on {len(yv)}", flush=True)
    booster_params = {"objective": "reg:squarederror", "max_depth": int(params.get("max_depth", 4)), "eta": float(params.get("eta", 0.1)),
                      "subsample": float(params.get("subsample", 1.0)), "seed": int(params.get("seed", 0)), "nthread": 1, "eval_metric": "mae"}
    evals = [(dtrain, "train")] + ([(dvalid, "validation")] if len(yv) else [])
    stop = int(params.get("early_stopping_rounds", 0)) if len(yv) else 0
    booster = xgb.train(booster_params, dtrain, num_boost_round=int(params.get("num_boost_round", 200)), evals=evals,
                        early_stopping_rounds=stop or None, verbose_eval=25)
    if stop:  # keep the best round's trees only
        booster = booster[: booster.best_iteration + 1]
    pred = booster.predict(dtrain)
    metrics = {"train_rmse": float(np.sqrt(np.mean((pred - y) ** 2))), "trees": float(booster.num_boosted_rounds())}
    if len(yv):
        metrics["validation_mae"] = float(np.mean(np.abs(booster.predict(dvalid) - yv)))
    print(f"booster: {json.dumps(metrics)}", flush=True)
    booster.save_model(os.path.join(os.environ["DRIFTLINE_OUTPUT_DIR"], "model.json"))
    with open(os.path.join(os.environ["DRIFTLINE_OUTPUT_DIR"], "metrics.json"), "w") as f:
        json.dump(metrics, f)


if __name__ == "__main__":
    main()

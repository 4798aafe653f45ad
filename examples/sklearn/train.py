#!/usr/bin/python3
"""A scikit-learn trainer for Driftline's command trainer (docs/models.md, "Command trainers").

    driftline trainer --task-queue python --command sklearn='/usr/bin/python3 examples/sklearn/train.py'

and in the model's spec:

    trainer: {name: command, command: sklearn, task_queue: python,
              params: {n_estimators: 150, max_depth: 3, learning_rate: 0.1}}

It reads the run's rows from the files the trainer hands it ($DRIFTLINE_TRAIN,
$DRIFTLINE_VALIDATION: CSV, a header of the features and the target), fits a
GradientBoostingRegressor (or a RandomForestRegressor with params random_forest: 1) and writes
it as an ONNX tree ensemble to $DRIFTLINE_OUTPUT_DIR/model.onnx, with metrics.json beside it.
Only Debian's packages: python3-sklearn, python3-numpy, python3-onnx.

Missing values: scikit-learn 1.2's trees take none, so they are filled with the training
median, and the ONNX graph sends a missing value the way the median goes at every split: the
served model decides as the trained one did.
"""
import json
import os
import sys

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driftline_onnx import tree_ensemble_regressor  # noqa: E402


def read(path, features, target):
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header != features + [target]:
        sys.exit(f"{path}: header {header}, expected {features + [target]}")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, missing_values="", filling_values=np.nan, ndmin=2)
    return data[:, :-1], data[:, -1]


def main():
    features = os.environ["DRIFTLINE_FEATURES"].split(",")
    target = os.environ["DRIFTLINE_TARGET"]
    params = json.loads(os.environ.get("DRIFTLINE_PARAMS") or "{}")
    out = os.environ["DRIFTLINE_OUTPUT_DIR"]
    X, y = read(os.environ["DRIFTLINE_TRAIN"], features, target)
    Xv, yv = read(os.environ["DRIFTLINE_VALIDATION"], features, target)
    print(f"training on {len(y)} rows of {len(features)} features, validating on {len(yv)}", flush=True)
    if len(y) == 0:
        sys.exit("no training rows")
    median = np.nanmedian(X, axis=0)
    median = np.where(np.isnan(median), 0.0, median)
    fill = lambda A: np.where(np.isnan(A), median, A)
    if params.get("random_forest"):
        est = RandomForestRegressor(n_estimators=int(params.get("n_estimators", 100)), max_depth=int(params.get("max_depth", 8)) or None,
                                    min_samples_leaf=int(params.get("min_samples_leaf", 5)), random_state=int(params.get("seed", 0)), n_jobs=1)
    else:
        est = GradientBoostingRegressor(n_estimators=int(params.get("n_estimators", 150)), max_depth=int(params.get("max_depth", 3)),
                                        learning_rate=float(params.get("learning_rate", 0.1)), subsample=float(params.get("subsample", 1.0)),
                                        random_state=int(params.get("seed", 0)))
    est.fit(fill(X).astype(np.float32), y)
    metrics = {"train_rmse": float(np.sqrt(np.mean((est.predict(fill(X).astype(np.float32)) - y) ** 2)))}
    if len(yv):
        metrics["validation_mae"] = float(np.mean(np.abs(est.predict(fill(Xv).astype(np.float32)) - yv)))
    print(f"fitted {type(est).__name__}: {json.dumps(metrics)}", flush=True)
    with open(os.path.join(out, "model.onnx"), "wb") as f:
        f.write(tree_ensemble_regressor(est, len(features), median).SerializeToString())
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Peers for bench/models.sh: XGBoost hist and scikit-learn Ridge on the data gbdtbench wrote.

  models_peers.py xgb   DIR ROWS FEATURES TREES   XGBoost hist, nthread=2, same hyperparameters
  models_peers.py ridge DIR ROWS FEATURES         StandardScaler + Ridge(alpha=1), coefficients
                                                  compared with DIR/ridge.json
"""
import json
import sys
import time

import numpy as np



def _timed(f):
    s = time.perf_counter()
    f()
    return time.perf_counter() - s


mode, d, rows, feats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.fromfile(d + "/x.f32", dtype="<f4").reshape(rows, feats)
y = np.fromfile(d + "/y.f32", dtype="<f4")
cut = rows * 8 // 10

if mode == "xgb":
    import xgboost as xgb

    trees = int(sys.argv[5])
    secs = float("inf")
    for _ in range(3):  # best of three, as the Go side does
        start = time.perf_counter()
        dtrain = xgb.DMatrix(x[:cut], label=y[:cut], nthread=2)
        booster = xgb.train(
            {"tree_method": "hist", "nthread": 2, "max_depth": 6, "eta": 0.1, "max_bin": 256,
             "lambda": 1.0, "min_child_weight": 1.0, "objective": "reg:squarederror"},
            dtrain, num_boost_round=trees)
        secs = min(secs, time.perf_counter() - start)
    pred = booster.predict(xgb.DMatrix(x[cut:], nthread=2))
    mae = float(np.mean(np.abs(pred.astype(np.float64) - y[cut:].astype(np.float64))))
    print(f"xgboost {xgb.__version__} hist nthread=2: {trees} trees depth 6 on {cut} x {feats}: "
          f"train {secs:.3f} s (best of 3, DMatrix included), validation MAE {mae:.5f}")
    booster.set_param({"nthread": 1})
    xv = np.ascontiguousarray(x[cut:])
    best = min(_timed(lambda: booster.inplace_predict(xv)) for _ in range(3))  # no prediction cache
    print(f"xgboost batch prediction (inplace_predict, nthread=1): {(rows - cut) / best / 1e6:.2f}M rows/s")
    print(f"PEER_TRAIN_SECONDS={secs:.6f}")
    print(f"PEER_MAE={mae:.6f}")
elif mode == "ridge":
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    import sklearn

    xt, yt = x[:cut].astype(np.float64), y[:cut].astype(np.float64)
    best, model = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(xt, yt)
        best = min(best, time.perf_counter() - start)
    ours = json.load(open(d + "/ridge.json"))
    coef = model[-1].coef_
    diff = float(np.max(np.abs(coef - np.array(ours["coef"]))))
    idiff = abs(float(model[-1].intercept_) - ours["intercept"])
    print(f"scikit-learn {sklearn.__version__} StandardScaler+Ridge(alpha=1): {cut} x {feats}: {best:.3f} s (best of 3); "
          f"largest coefficient difference {diff:.2e}, intercept difference {idiff:.2e}")
    print(f"PEER_RIDGE_SECONDS={best:.6f}")
    print(f"COEF_MAX_DIFF={max(diff, idiff):.3e}")
else:
    sys.exit(f"unknown mode {mode}")


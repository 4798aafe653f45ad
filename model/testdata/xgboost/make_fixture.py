#!/usr/bin/python3
"""Makes the XGBoost fixture the model package tests load (run from this directory).

Needs Debian's python3-xgboost (make bench-deps). Writes:
  data.csv       the rows (x0..x3, some missing) and XGBoost's own predictions
  regression.json  reg:squarederror, 30 trees depth 4, saved with save_model
  binary.json      binary:logistic, 20 trees depth 3
"""
import numpy as np
import xgboost as xgb

rng = np.random.default_rng(7)
n = 400
x = rng.normal(size=(n, 4)).astype(np.float32)
x[rng.random(n) < 0.1, 1] = np.nan  # missing values: routed by each node's default direction
y = (3 * x[:, 0] + np.where(np.isnan(x[:, 1]), 5, x[:, 1] ** 2) - 2 * x[:, 2] * x[:, 3]
     + rng.normal(scale=0.1, size=n)).astype(np.float32)
label = (y > np.median(y)).astype(np.float32)
names = ["x0", "x1", "x2", "x3"]

reg = xgb.train({"tree_method": "hist", "max_depth": 4, "eta": 0.3, "objective": "reg:squarederror", "seed": 1},
                xgb.DMatrix(x, label=y, feature_names=names), num_boost_round=30)
reg.save_model("regression.json")
clf = xgb.train({"tree_method": "hist", "max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "seed": 1},
                xgb.DMatrix(x, label=label, feature_names=names), num_boost_round=20)
clf.save_model("binary.json")

d = xgb.DMatrix(x, feature_names=names)
pr, pc = reg.predict(d), clf.predict(d)
with open("data.csv", "w") as f:
    f.write("x0,x1,x2,x3,xgb_regression,xgb_binary\n")
    for i in range(n):
        vals = ["" if np.isnan(v) else repr(float(v)) for v in x[i]]
        f.write(",".join(vals + [repr(float(pr[i])), repr(float(pc[i]))]) + "\n")
print(f"xgboost {xgb.__version__}: wrote regression.json, binary.json, data.csv")

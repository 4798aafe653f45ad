"""Trains the edge benchmark's XGBoost model (Debian's python3-xgboost) on the demo's
training rows written by edgebench: 100 trees of depth 6, saved as XGBoost JSON.
   /usr/bin/python3 bench/edge_xgb.py DIR"""
import sys

import numpy as np
import xgboost as xgb

d = sys.argv[1]
train = np.loadtxt(f"{d}/train.csv", delimiter=",")
X, y = train[:, :-1], train[:, -1]
b = xgb.train({"max_depth": 6, "eta": 0.1, "objective": "reg:squarederror", "tree_method": "hist", "nthread": 2},
              xgb.DMatrix(X, y), 100)
b.save_model(f"{d}/model.json")
print(f"xgboost {xgb.__version__}: {len(y)} training rows, 100 trees")

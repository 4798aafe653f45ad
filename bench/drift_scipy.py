#!/usr/bin/python3
"""Loops scipy.stats.ks_2samp over the columns driftbench wrote (see bench/drift.sh)."""
import resource
import sys
import time

import numpy as np
from scipy import stats

d, rows, feats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ref = np.fromfile(d + "/ref.f64", dtype="<f8").reshape(rows, feats)
cur = np.fromfile(d + "/cur.f64", dtype="<f8").reshape(rows, feats)
ref_cols = [np.ascontiguousarray(ref[:, j]) for j in range(feats)]
cur_cols = [np.ascontiguousarray(cur[:, j]) for j in range(feats)]
start = time.perf_counter()
drifted = 0
for j in range(feats):
    r = stats.ks_2samp(ref_cols[j], cur_cols[j], method="auto")
    drifted += r.pvalue < 0.05 / feats
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"scipy {__import__('scipy').__version__}: ks_2samp looped over {feats} columns of {rows} vs {rows} rows: {elapsed:.3f} s, {rows / elapsed / 1e6:.2f}M rows/s, peak RSS {peak:.0f} MB")
print(f"SCIPY_SECONDS={elapsed:.6f}")

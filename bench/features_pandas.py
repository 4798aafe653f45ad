#!/usr/bin/python3
"""The peer of the point-in-time join (bench/features.sh): pandas' merge_asof on the same
rows featuresbench wrote (-peer-data DIR): by key, on event time, backward, within the same
30-day lookback. It filters by event time only (as Feast's default join does), so it does less
than features.AsOf, which also requires created time <= T. Prints seconds (sorting included,
loading excluded) and peak RSS."""
import resource
import sys
import time

import numpy as np
import pandas as pd

d = sys.argv[1]
f = np.fromfile(d + "/features.bin", dtype="<i8").reshape(-1, 4)
e = np.fromfile(d + "/entities.bin", dtype="<i8").reshape(-1, 2)
feats = pd.DataFrame({"key": f[:, 0], "event": f[:, 1], "created": f[:, 2], "value": f[:, 3]})
ents = pd.DataFrame({"key": e[:, 0], "at": e[:, 1]})
lookback = 30 * 24 * 3600 * 1_000_000
t0 = time.perf_counter()
left = ents.sort_values("at", kind="stable")
right = feats.sort_values(["event", "created"], kind="stable")
out = pd.merge_asof(left, right, left_on="at", right_on="event", by="key", direction="backward",
                    tolerance=lookback - 1, allow_exact_matches=True)
el = time.perf_counter() - t0
matched = int(out["value"].notna().sum())
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"pandas {pd.__version__} merge_asof: {len(feats)} feature rows x {len(ents)} entity rows: {el:.2f} s, "
      f"{len(ents) / el / 1e6:.2f}M entity rows/s, {matched} matched (event time only); peak RSS {rss:.0f} MB")

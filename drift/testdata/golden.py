#!/usr/bin/python3
"""Golden values for Driftline's drift statistics, computed with scipy.

Run with Debian's python3-scipy:  /usr/bin/python3 drift/testdata/golden.py > drift/testdata/golden.json
The samples come from a 64-bit LCG and use only correctly rounded +, *, / and floor, so
drift/golden_test.go regenerates the same bits in Go; the file holds parameters and results.
"""
import json
import math

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

MASK = 2**64 - 1


def sample(seed, n, loc, scale, grid):
    state = seed
    out = []
    for _ in range(n):
        s = 0.0
        for _ in range(4):
            state = (state * 6364136223846793005 + 1442695040888963407) & MASK
            s = s + (state >> 11) / 9007199254740992.0
        v = s * scale + loc
        if grid:
            v = math.floor(v * grid) / grid
        out.append(v)
    return out


def spec(seed, n, loc=0.0, scale=1.0, grid=0):
    return {"seed": seed, "n": n, "loc": loc, "scale": scale, "grid": grid}


def draw(s):
    return sample(s["seed"], s["n"], s["loc"], s["scale"], s["grid"])


ks_pairs = [
    ("tiny", spec(1, 5), spec(2, 7, 0.3)),
    ("equal sizes", spec(3, 40), spec(4, 40, 0.2)),
    ("equal sizes same", spec(5, 300), spec(6, 300)),
    ("small shifted", spec(7, 100), spec(8, 150, 0.25)),
    ("ties", spec(9, 800, grid=10), spec(10, 600, 0.05, grid=10)),
    ("exact large", spec(11, 3000), spec(12, 10000, 0.02)),
    ("exact no drift", spec(13, 2000), spec(14, 2500)),
    ("asymp moderate", spec(15, 10001), spec(16, 8000, 0.01)),
    ("asymp big", spec(17, 50000), spec(18, 20000, 0.01)),
    ("asymp strong", spec(19, 20000), spec(20, 15000, 0.2)),
    ("asymp no drift", spec(21, 12000), spec(22, 30000)),
    ("asymp small en", spec(23, 30), spec(24, 20000, 0.1)),
    ("asymp en 200", spec(25, 200), spec(26, 15000, 0.05)),
    ("asymp tiny d", spec(27, 40000), spec(28, 40000, 0.001)),
]

ks = []
for name, a, b in ks_pairs:
    r = stats.ks_2samp(draw(a), draw(b), method="auto")
    ks.append({"name": name, "a": a, "b": b, "statistic": float(r.statistic), "pvalue": float(r.pvalue)})

wasserstein = []
for name, a, b in ks_pairs[:9]:
    wasserstein.append({"name": name, "a": a, "b": b,
                        "distance": float(stats.wasserstein_distance(draw(a), draw(b)))})

count_vectors = [
    ("uniform vs skewed", [120.0, 80.0, 100.0, 95.0], [0.25, 0.25, 0.25, 0.25]),
    ("close", [1002.0, 998.0, 3010.0, 4990.0], [0.1, 0.1, 0.3, 0.5]),
    ("strong", [10.0, 500.0, 30.0], [0.6, 0.2, 0.2]),
    ("seven days", [140.0, 151.0, 149.0, 160.0, 171.0, 230.0, 250.0], [1 / 7.0] * 7),
]
chisquare = []
jensenshannon = []
psi = []
for name, obs, shares in count_vectors:
    obs_a = np.array(obs)
    exp = np.array(shares) / np.sum(shares) * np.sum(obs_a)
    r = stats.chisquare(obs_a, exp)
    chisquare.append({"name": name, "observed": obs, "shares": shares,
                      "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    jensenshannon.append({"name": name, "p": obs, "q": shares,
                          "distance": float(distance.jensenshannon(obs, shares, base=2))})
    cur = obs_a / obs_a.sum()
    ref = np.array(shares) / np.sum(shares)
    c, r_ = np.maximum(cur, 1e-4), np.maximum(ref, 1e-4)
    psi.append({"name": name, "ref": list(ref), "cur": list(cur), "psi": float(np.sum((c - r_) * np.log(c / r_)))})

pvals = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5, 0.049, 0.9]
m = len(pvals)
order = np.argsort(pvals, kind="stable")
ranked = np.array(pvals)[order] * m / np.arange(1, m + 1)
bh_sorted = np.minimum(1, np.minimum.accumulate(ranked[::-1])[::-1])
bh = np.empty(m)
bh[order] = bh_sorted

print(json.dumps({
    "generator": "drift/testdata/golden.py with scipy " + scipy.__version__ + ", numpy " + np.__version__,
    "ks_2samp": ks,
    "wasserstein_distance": wasserstein,
    "chisquare": chisquare,
    "jensenshannon_base2": jensenshannon,
    "psi": psi,
    "multiple_testing": {"pvalues": pvals, "bonferroni": [min(1.0, p * m) for p in pvals], "benjamini_hochberg": list(bh)},
}, indent=1))

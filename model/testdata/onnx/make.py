#!/usr/bin/python3
"""Builds the ONNX conformance fixtures of model/onnx_test.go.

scikit-learn's fitted trees are written as ai.onnx.ml tree ensembles with Debian's
python3-onnx (skl2onnx is not packaged there), and scikit-learn's own predictions of a test
set are stored beside each graph: the Go importer must reproduce them. Node modes are varied
by rewriting a split into an equivalent one (x <= t as not x > t, as x < next(t), as not
x >= next(t)), so every comparison mode is checked against scikit-learn's predictions. Small
hand-made graphs cover equality, set membership and missing values, with the outputs the
operator's definition gives.

Run: /usr/bin/python3 model/testdata/onnx/make.py   (scikit-learn 1.2.1, onnx 1.12, numpy)
"""
import json
import os
import sys

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)

OUT = os.path.dirname(os.path.abspath(__file__))
LEAF = -1
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER"]


def data(n, p, seed, classify=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)  # float32 values: scikit-learn's trees read float32
    y = 3 * X[:, 0] - 2 * X[:, 1] ** 2 + np.sin(3 * X[:, 2]) + 0.3 * rng.normal(size=n)
    if classify:
        y = (y + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def trees_of(est):
    """The fitted DecisionTree objects, in the order the ensemble sums them."""
    if hasattr(est, "estimators_") and isinstance(est.estimators_, np.ndarray):
        return [e for e in est.estimators_[:, 0]]
    return list(est.estimators_)


def rewrite(t, mode, double):
    """An equivalent split of "x <= t, true branch left": (mode, split, swap children)."""
    nxt = np.nextafter(t, np.inf) if double else float(np.nextafter(np.float32(t), np.float32(np.inf)))
    return {
        0: ("BRANCH_LEQ", t, False),
        1: ("BRANCH_LT", nxt, False),   # x <= t  <=>  x < next(t)
        2: ("BRANCH_GTE", nxt, True),   # x <= t  <=>  not x >= next(t)
        3: ("BRANCH_GT", t, True),      # x <= t  <=>  not x > t
    }[mode]


def nodes(est, scale, leaf_value, double, vary, rng):
    """Node tuples of every tree: (tree, node, feature, mode, split, true, false, hit, value)."""
    rows = []
    for k, dt in enumerate(trees_of(est)):
        tr = dt.tree_
        for i in range(tr.node_count):
            hit = float(tr.weighted_n_node_samples[i])
            if tr.children_left[i] == LEAF:
                rows.append((k, i, 0, "LEAF", 0.0, 0, 0, hit, leaf_value(tr, i) * scale))
                continue
            t = float(tr.threshold[i]) if double else float(np.float32(tr.threshold[i]))
            mode, split, swap = rewrite(t, int(rng.integers(4)) if vary else 0, double)
            left, right = int(tr.children_left[i]), int(tr.children_right[i])
            if swap:
                left, right = right, left
            rows.append((k, i, int(tr.feature[i]), mode, split, left, right, hit, None))
    return rows


def attr_values(name, values, double):
    if double:
        return {name + "_as_tensor": numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)}
    return {name: [float(v) for v in values]}


def ensemble_v3(op, rows, weights, base, double, extra):
    a = {
        "nodes_treeids": [r[0] for r in rows], "nodes_nodeids": [r[1] for r in rows],
        "nodes_featureids": [r[2] for r in rows], "nodes_modes": [r[3] for r in rows],
        "nodes_truenodeids": [r[5] for r in rows], "nodes_falsenodeids": [r[6] for r in rows],
        "nodes_missing_value_tracks_true": [0] * len(rows),
    }
    a.update(attr_values("nodes_values", [r[4] for r in rows], double))
    a.update(attr_values("nodes_hitrates", [r[7] for r in rows], double))
    prefix = "target" if op == "TreeEnsembleRegressor" else "class"
    a[prefix + "_treeids"] = [w[0] for w in weights]
    a[prefix + "_nodeids"] = [w[1] for w in weights]
    a[prefix + "_ids"] = [w[2] for w in weights]
    a.update(attr_values(prefix + "_weights", [w[3] for w in weights], double))
    if base is not None:
        a.update(attr_values("base_values", base, double))
    a.update(extra)
    return a


def graph(op, attrs, p, opset, input_type=TensorProto.FLOAT, outputs=("Y",)):
    node = helper.make_node(op, ["X"], list(outputs), domain="ai.onnx.ml", **attrs)
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    g = helper.make_graph([node], "driftline_fixture", [helper.make_tensor_value_info("X", input_type, [None, p])], outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", opset)],
                             producer_name="driftline-fixture", ir_version=8)


def v5(rows, p, agg, post, double, n_targets=1, target_of=lambda r: 0):
    """A TreeEnsemble (opset 5) graph of the node tuples: interior nodes and leaves apart."""
    feats, modes, splits, tids, tleaf, fids, fleaf, roots, lw, lt = [], [], [], [], [], [], [], [], [], []
    by_tree = {}
    for r in rows:
        by_tree.setdefault(r[0], []).append(r)
    code = {m: i for i, m in enumerate(MODES)}
    for k in sorted(by_tree):
        tree = {r[1]: r for r in by_tree[k]}
        inner = [i for i in sorted(tree) if tree[i][3] != "LEAF"]
        base_node, pos = len(feats), {i: len(feats) + j for j, i in enumerate(inner)}
        leaves = {}
        for i in sorted(tree):
            if tree[i][3] == "LEAF":
                leaves[i] = len(lw) + len(leaves)
        for i in inner:
            r = tree[i]
            feats.append(r[2]); modes.append(code[r[3]]); splits.append(r[4])
            for child, ids, flags in ((r[5], tids, tleaf), (r[6], fids, fleaf)):
                if tree[child][3] == "LEAF":
                    ids.append(leaves[child]); flags.append(1)
                else:
                    ids.append(pos[child]); flags.append(0)
        for i in sorted(leaves, key=leaves.get):
            lw.append(tree[i][8]); lt.append(target_of(tree[i]))
        roots.append(base_node)
    ft = np.float64 if double else np.float32
    attrs = {
        "nodes_featureids": feats, "nodes_modes": numpy_helper.from_array(np.array(modes, dtype=np.uint8), "m"),
        "nodes_splits": numpy_helper.from_array(np.array(splits, dtype=ft), "s"),
        "nodes_truenodeids": tids, "nodes_trueleafs": tleaf, "nodes_falsenodeids": fids, "nodes_falseleafs": fleaf,
        "leaf_targetids": lt, "leaf_weights": numpy_helper.from_array(np.array(lw, dtype=ft), "w"),
        "tree_roots": roots, "n_targets": n_targets, "aggregate_function": agg, "post_transform": post,
    }
    return graph("TreeEnsemble", attrs, p, 5, TensorProto.DOUBLE if double else TensorProto.FLOAT)


def save(name, model, X, expected, features, note):
    onnx.save(model, os.path.join(OUT, name + ".onnx"))
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"note": note, "features": features, "x": [[None if np.isnan(v) else float(v) for v in row] for row in X],
                   "expected": [float(v) for v in expected]}, f)


def main():
    rng = np.random.default_rng(7)
    p = 5
    feats = [f"f{i}" for i in range(p)]
    X, y = data(2000, p, 1)
    Xt, _ = data(300, p, 2)
    Xt = Xt.astype(np.float64)
    src = f"scikit-learn {sklearn.__version__}, onnx {onnx.__version__}"

    gbr = GradientBoostingRegressor(n_estimators=60, max_depth=4, learning_rate=0.1, random_state=0).fit(X, y)
    init = float(gbr.init_.constant_[0][0])
    value = lambda tr, i: float(tr.value[i][0][0])
    want = gbr.predict(Xt)
    for name, opset, double, vary in (("gbr_opset3_double", 3, True, False), ("gbr_opset1_float", 1, False, False),
                                      ("gbr_opset3_modes", 3, True, True)):
        rows = nodes(gbr, gbr.learning_rate, value, double, vary, rng)
        w = [(r[0], r[1], 0, r[8]) for r in rows if r[3] == "LEAF"]
        a = ensemble_v3("TreeEnsembleRegressor", rows, w, [init], double, {"n_targets": 1, "post_transform": "NONE", "aggregate_function": "SUM"})
        save(name, graph("TreeEnsembleRegressor", a, p, opset), Xt, want, feats, f"GradientBoostingRegressor.predict, {src}")
    rows = nodes(gbr, gbr.learning_rate, value, True, True, rng)
    m = v5(rows, p, 1, 0, True)
    # TreeEnsemble has no base_values: the initial prediction is a one-leaf tree.
    save("gbr_opset5_modes", with_constant(m, init, True), Xt, want, feats, f"GradientBoostingRegressor.predict, {src}")

    rfr = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(X, y)
    rows = nodes(rfr, 1.0, value, True, False, rng)
    w = [(r[0], r[1], 0, r[8]) for r in rows if r[3] == "LEAF"]
    a = ensemble_v3("TreeEnsembleRegressor", rows, w, None, True, {"n_targets": 1, "aggregate_function": "AVERAGE"})
    save("rfr_opset3_average", graph("TreeEnsembleRegressor", a, p, 3), Xt, rfr.predict(Xt), feats, f"RandomForestRegressor.predict, {src}")

    Xc, yc = data(2000, p, 3, classify=True)
    gbc = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(Xc, yc)
    prior = float(gbc._raw_predict_init(Xc[:1])[0][0])
    rows = nodes(gbc, gbc.learning_rate, value, True, False, rng)
    w = [(r[0], r[1], 0, r[8]) for r in rows if r[3] == "LEAF"]
    a = ensemble_v3("TreeEnsembleClassifier", rows, w, [prior], True, {"classlabels_int64s": [0, 1], "post_transform": "LOGISTIC"})
    save("gbc_opset3_logistic", graph("TreeEnsembleClassifier", a, p, 3, outputs=("label", "probabilities")), Xt,
         gbc.predict_proba(Xt)[:, 1], feats, f"GradientBoostingClassifier.predict_proba[:, 1], {src}")

    rfc = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(Xc, yc)
    n = len(rfc.estimators_)
    w = []
    for k, dt in enumerate(rfc.estimators_):
        tr = dt.tree_
        for i in range(tr.node_count):
            if tr.children_left[i] == LEAF:
                counts = tr.value[i][0]
                for c in (0, 1):
                    w.append((k, i, c, float(counts[c] / counts.sum()) / n))
    rows = nodes(rfc, 1.0, lambda tr, i: 0.0, True, False, rng)
    a = ensemble_v3("TreeEnsembleClassifier", rows, w, None, True, {"classlabels_int64s": [0, 1], "post_transform": "NONE"})
    save("rfc_opset3_probability", graph("TreeEnsembleClassifier", a, p, 3, outputs=("label", "probabilities")), Xt,
         rfc.predict_proba(Xt)[:, 1], feats, f"RandomForestClassifier.predict_proba[:, 1], {src}")
    hand_made()


def with_constant(m, c, double):
    """Adds a one-leaf tree of value c to a TreeEnsemble graph (a root whose both branches are
    the same leaf, the way a single-leaf tree is written in opset 5)."""
    node = m.graph.node[0]
    at = {a.name: a for a in node.attribute}
    def ints(name):
        return list(at[name].ints)
    def arr(name):
        return numpy_helper.to_array(at[name].t)
    nf, nl = len(ints("nodes_featureids")), len(ints("leaf_targetids"))
    new = dict(
        nodes_featureids=ints("nodes_featureids") + [0],
        nodes_modes=numpy_helper.from_array(np.append(arr("nodes_modes"), np.uint8(0)), "m"),
        nodes_splits=numpy_helper.from_array(np.append(arr("nodes_splits"), arr("nodes_splits").dtype.type(0)), "s"),
        nodes_truenodeids=ints("nodes_truenodeids") + [nl], nodes_trueleafs=ints("nodes_trueleafs") + [1],
        nodes_falsenodeids=ints("nodes_falsenodeids") + [nl], nodes_falseleafs=ints("nodes_falseleafs") + [1],
        leaf_targetids=ints("leaf_targetids") + [0],
        leaf_weights=numpy_helper.from_array(np.append(arr("leaf_weights"), arr("leaf_weights").dtype.type(c)), "w"),
        tree_roots=[nf] + ints("tree_roots"),
        n_targets=at["n_targets"].i, aggregate_function=at["aggregate_function"].i, post_transform=at["post_transform"].i)
    return graph("TreeEnsemble", new, m.graph.input[0].type.tensor_type.shape.dim[1].dim_value, 5,
                 m.graph.input[0].type.tensor_type.elem_type)


def hand_made():
    """Equality, inequality, membership and missing values on small trees, their outputs
    worked out from the operator's definition."""
    nan = float("nan")
    # Tree 0: x0 == 2 ? 10 : (x1 != 0.5 ? 20 : 30), missing x0 tracks true.
    # Tree 1 (opset 5 only): x2 in {1, 3} ? 100 : 200.
    rows = [(0, 0, 0, "BRANCH_EQ", 2.0, 1, 2, 1.0, None), (0, 1, 0, "LEAF", 0, 0, 0, 1.0, 10.0),
            (0, 2, 1, "BRANCH_NEQ", 0.5, 3, 4, 1.0, None), (0, 3, 0, "LEAF", 0, 0, 0, 1.0, 20.0),
            (0, 4, 0, "LEAF", 0, 0, 0, 1.0, 30.0)]
    X = np.array([[2, 0, 1], [2.5, 0, 3], [1, 0.5, 2], [nan, 0.5, 1], [3, nan, nan], [-2, 0.25, 0], [2, 0.5, 3.5]], dtype=np.float64)
    def tree0(x):
        if np.isnan(x[0]) or x[0] == 2:
            return 10.0
        return 20.0 if (np.isnan(x[1]) or x[1] != 0.5) else 30.0
    w = [(r[0], r[1], 0, r[8]) for r in rows if r[3] == "LEAF"]
    a = ensemble_v3("TreeEnsembleRegressor", rows, w, [1.5], True, {"n_targets": 1})
    a["nodes_missing_value_tracks_true"] = [1, 0, 0, 0, 0]
    save("hand_eq_opset3", graph("TreeEnsembleRegressor", a, 3, 3, TensorProto.DOUBLE), X,
         [1.5 + tree0(x) for x in X], ["a", "b", "c"], "equality, inequality and missing values, by the definition")
    m = v5(rows, 3, 1, 0, True)
    at = {x.name: x for x in m.graph.node[0].attribute}
    # Add tree 1 (membership) by hand: one interior node, two leaves.
    feats = list(at["nodes_featureids"].ints) + [2]
    modes = np.append(numpy_helper.to_array(at["nodes_modes"].t), np.uint8(6))
    splits = np.append(numpy_helper.to_array(at["nodes_splits"].t), 0.0)
    nl = len(at["leaf_targetids"].ints)
    tracks = [1, 0, 0]
    new = dict(nodes_featureids=feats, nodes_modes=numpy_helper.from_array(modes, "m"),
               nodes_splits=numpy_helper.from_array(splits, "s"),
               nodes_truenodeids=list(at["nodes_truenodeids"].ints) + [nl], nodes_trueleafs=list(at["nodes_trueleafs"].ints) + [1],
               nodes_falsenodeids=list(at["nodes_falsenodeids"].ints) + [nl + 1], nodes_falseleafs=list(at["nodes_falseleafs"].ints) + [1],
               nodes_missing_value_tracks_true=tracks,
               membership_values=numpy_helper.from_array(np.array([1.0, 3.0, nan]), "mv"),
               leaf_targetids=list(at["leaf_targetids"].ints) + [0, 0],
               leaf_weights=numpy_helper.from_array(np.append(numpy_helper.to_array(at["leaf_weights"].t), [100.0, 200.0]), "w"),
               tree_roots=list(at["tree_roots"].ints) + [len(feats) - 1], n_targets=1, aggregate_function=1, post_transform=0)
    def tree1(x):
        return 100.0 if x[2] in (1.0, 3.0) else 200.0
    save("hand_member_opset5", graph("TreeEnsemble", new, 3, 5, TensorProto.DOUBLE), X,
         [tree0(x) + tree1(x) for x in X], ["a", "b", "c"], "equality, inequality, membership and missing values, by the definition")


if __name__ == "__main__":
    sys.exit(main())

"""scikit-learn tree ensembles as ONNX graphs, with Debian's python3-onnx only (skl2onnx is not
packaged there): one ai.onnx.ml TreeEnsembleRegressor (opset 3), split values and leaf
weights as doubles (*_as_tensor), the input float as scikit-learn's trees read it, each node's
hit rate its training weight (Driftline's explanations use it as the node's cover).
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

LEAF = -1


def _trees(est):
    if hasattr(est, "init_"):  # gradient boosting: trees in a (n, 1) array, scaled by the rate
        return [t for t in est.estimators_[:, 0]], float(est.learning_rate), [float(est.init_.constant_[0][0])], "SUM"
    return list(est.estimators_), 1.0, None, "AVERAGE"  # a forest: the mean of its trees


def tree_ensemble_regressor(est, n_features, missing_as=None):
    """The ONNX model of a fitted GradientBoostingRegressor or RandomForestRegressor. With
    missing_as (a value per feature), a missing input goes the way that value goes."""
    trees, scale, base, aggregate = _trees(est)
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
                         "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids", "target_ids")}
    values, hits, weights = [], [], []
    for k, dt in enumerate(trees):
        tr = dt.tree_
        for i in range(tr.node_count):
            leaf = tr.children_left[i] == LEAF
            a["nodes_treeids"].append(k)
            a["nodes_nodeids"].append(i)
            a["nodes_featureids"].append(0 if leaf else int(tr.feature[i]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(tr.children_left[i]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tr.children_right[i]))
            tracks = 0
            if not leaf and missing_as is not None:
                tracks = int(np.float32(missing_as[tr.feature[i]]) <= tr.threshold[i])
            a["nodes_missing_value_tracks_true"].append(tracks)
            values.append(0.0 if leaf else float(tr.threshold[i]))
            hits.append(float(tr.weighted_n_node_samples[i]))
            if leaf:
                a["target_treeids"].append(k)
                a["target_nodeids"].append(i)
                a["target_ids"].append(0)
                weights.append(float(tr.value[i][0][0]) * scale)
    tensor = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float64), name)
    attrs = dict(a, n_targets=1, aggregate_function=aggregate, post_transform="NONE",
                 nodes_values_as_tensor=tensor("nodes_values", values), nodes_hitrates_as_tensor=tensor("nodes_hitrates", hits),
                 target_weights_as_tensor=tensor("target_weights", weights))
    if base is not None:
        attrs["base_values_as_tensor"] = tensor("base_values", base)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph([node], type(est).__name__, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
                              [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)],
                             producer_name="driftline-examples-sklearn", ir_version=8)

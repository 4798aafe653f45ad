package main

import (
	"encoding/json"

	"github.com/driftline/driftline/model"
)

// lightGBMJSON writes e as a LightGBM model dump (the JSON leaves reads): each tree's nodes
// nested, numeric splits "<=" with missing values NaN going the default way, the base score
// added to the first tree's leaves.
func lightGBMJSON(e *model.Ensemble, p int) []byte {
	type tree struct {
		NumLeaves int `json:"num_leaves"`
		NumCat    int `json:"num_cat"`
		Structure any `json:"tree_structure"`
	}
	var trees []tree
	for k := range e.Trees {
		t := &e.Trees[k]
		base := 0.0
		if k == 0 {
			base = e.BaseScore
		}
		leaves := 0
		var node func(i int32) any
		node = func(i int32) any {
			if t.Left[i] < 0 {
				leaves++
				return map[string]any{"leaf_index": leaves - 1, "leaf_value": t.Value[i] + base}
			}
			return map[string]any{"split_index": i, "split_feature": t.Feature[i], "threshold": t.Threshold[i], "decision_type": "<=",
				"default_left": t.DefaultLeft[i], "missing_type": "NaN", "left_child": node(t.Left[i]), "right_child": node(t.Right[i])}
		}
		s := node(0)
		trees = append(trees, tree{NumLeaves: leaves, Structure: s})
	}
	out, err := json.Marshal(map[string]any{"name": "tree", "version": "v2", "num_class": 1, "num_tree_per_iteration": 1,
		"max_feature_idx": p - 1, "objective": "regression", "tree_info": trees})
	if err != nil {
		panic(err)
	}
	return out
}

package externaltrainer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// Trainer reads and writes the pipeline's bucket.
type Trainer struct {
	Store objstore.Bucket
	Alpha float64
}

// key turns a URI of the bucket into an object key.
func (t *Trainer) key(uri string) (string, error) {
	k, ok := strings.CutPrefix(uri, t.Store.URI(""))
	if !ok {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is not in %s", uri, t.Store.URI("")), "InvalidInput", nil)
	}
	return k, nil
}

// Train implements driftline.train.v1.
func (t *Trainer) Train(ctx context.Context, in pipeline.ExternalTrainInput) (pipeline.ExternalTrainOutput, error) {
	var out pipeline.ExternalTrainOutput
	sk, err := t.key(in.SnapshotURI)
	if err != nil {
		return out, err
	}
	data, _, err := objstore.ReadAll(ctx, t.Store, sk)
	if err != nil {
		return out, err
	}
	var snap dataset.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return out, temporal.NewNonRetryableApplicationError("snapshot "+sk+": "+err.Error(), "InvalidInput", nil)
	}
	// Read only the columns the model needs: features, target and event time.
	c := contract.Contract{Columns: []contract.Column{
		{Name: in.EventTime, Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: in.Target, Type: contract.TypeDouble, Role: contract.RoleTarget},
	}}
	for _, s := range in.Schema {
		c.Columns = append(c.Columns, contract.Column{Name: s.Name, Type: s.Type, Role: contract.RoleFeature, Nullable: true})
	}
	acc := model.NewRidgeAccumulator(len(in.Features))
	x := make([]float64, len(in.Features))
	err = dataset.Scan(ctx, t.Store, snap, c, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, b.File)
		if b.Date >= in.HoldoutFrom {
			return nil
		}
		y := b.Num(in.Target)
	rows:
		for r := 0; r < b.Rows; r++ {
			if !b.Accepted[r] {
				continue
			}
			for j, f := range in.Features {
				c := b.Cols[f]
				if c.Null[r] || c.Num[r] != c.Num[r] {
					continue rows // ridge cannot take missing values: skip the row
				}
				x[j] = c.Num[r]
			}
			acc.Add(x, y[r])
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	lin, err := acc.Fit(t.Alpha)
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	m := &model.Model{Family: "linear", Trainer: "ridge", Objective: hparams.SquaredError, Features: in.Features, Target: in.Target,
		Params: map[string]float64{"alpha": t.Alpha}, Linear: lin}
	art, err := m.Marshal()
	if err != nil {
		return out, err
	}
	ok, err := t.key(in.OutputURI)
	if err != nil {
		return out, err
	}
	// Idempotent: a retry writes the same bytes to the same key.
	if _, err := t.Store.Put(ctx, ok, art, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return out, err
	}
	return pipeline.ExternalTrainOutput{ArtifactURI: in.OutputURI, Format: pipeline.FormatDriftline, TrainRows: int(acc.Rows()),
		Metrics: map[string]float64{"train_rmse": acc.TrainingRMSE(lin)}}, nil
}

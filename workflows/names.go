package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/pipeline"
)

// Typed keys of the custom search attributes (names in package pipeline).
var (
	AttrModel      = temporal.NewSearchAttributeKeyKeyword(pipeline.AttrModel)
	AttrOutcome    = temporal.NewSearchAttributeKeyKeyword(pipeline.AttrOutcome)
	AttrStage      = temporal.NewSearchAttributeKeyKeyword(pipeline.AttrStage)
	AttrDriftScore = temporal.NewSearchAttributeKeyFloat64(pipeline.AttrDriftScore)
	AttrVersion    = temporal.NewSearchAttributeKeyInt64(pipeline.AttrVersion)
)

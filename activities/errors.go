// Package activities holds the Temporal activities of the continuous-training loop. Each
// concern is a struct holding its dependencies; the methods are thin: they call the domain
// packages and translate errors into Temporal's retryable and non-retryable ones.
package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/registry"
)

// Application error types the workflow branches on. None of them is retried.
const (
	ErrTypeInvalidData   = "InvalidData"   // schema, corrupt file, empty window, too many bad rows
	ErrTypeModelNotFound = "ModelNotFound" // a version or artifact that should exist does not
	ErrTypeBadArtifact   = "BadArtifact"   // checksum or format failure
	ErrTypeConflict      = "Conflict"      // the deployment pointer is not in the expected state
)

// NonRetryable lists the types above for retry policies.
var NonRetryable = []string{ErrTypeInvalidData, ErrTypeModelNotFound, ErrTypeBadArtifact, ErrTypeConflict}

// classify turns domain errors into non-retryable application errors; anything else (network,
// storage faults) stays a plain error that Temporal retries.
func classify(step string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", step, err)
	switch {
	case errors.Is(err, dataset.ErrInvalidData):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeInvalidData, err)
	case errors.Is(err, model.ErrBadArtifact):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeBadArtifact, err)
	case errors.Is(err, registry.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeModelNotFound, err)
	case errors.Is(err, registry.ErrConflict):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeConflict, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeInvalidData, nil)
}

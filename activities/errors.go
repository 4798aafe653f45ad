package activities

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// classify turns domain errors into non-retryable application errors of the pipeline's error
// types; anything else (network, storage faults) stays a plain error that Temporal retries.
func classify(step string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // already classified
	}
	msg := fmt.Sprintf("%s: %v", step, err)
	switch {
	case errors.Is(err, dataset.ErrInvalidData):
		return temporal.NewNonRetryableApplicationError(msg, pipeline.ErrTypeInvalidData, err)
	case errors.Is(err, model.ErrBadArtifact):
		return temporal.NewNonRetryableApplicationError(msg, pipeline.ErrTypeBadArtifact, err)
	case errors.Is(err, registry.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(msg, pipeline.ErrTypeModelNotFound, err)
	case errors.Is(err, registry.ErrConflict):
		return temporal.NewNonRetryableApplicationError(msg, pipeline.ErrTypeConflict, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), pipeline.ErrTypeInvalidData, nil)
}

// reportKey locates one of a run's reports: reports/<model>/<run>/<name>.
func reportKey(model, run, name string) string { return keys.Report(model, run, name) }

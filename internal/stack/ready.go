package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// Exited says whether the process has exited (it was started and is gone).
func (s *Service) Exited() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitTemporalReady waits until the server at hostPort answers through its history service
// (a workflow that does not exist: NotFound) and its matching service (a task queue's
// description), or returns why not: the process exited, or the timeout passed.
func waitTemporalReady(svc *Service, hostPort string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ; ; time.Sleep(200 * time.Millisecond) {
		if svc.Exited() {
			return fmt.Errorf("it exited while starting: %s", logTail(svc.Log, 600))
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not ready within %s: %v", timeout, last)
		}
		if last = probeTemporal(ctx, hostPort); last == nil {
			if svc.Exited() {
				continue
			}
			return nil
		}
	}
}

func probeTemporal(ctx context.Context, hostPort string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return err
	}
	defer c.Close()
	ws := c.WorkflowService()
	_, err = ws.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: "default",
		Execution: &commonpb.WorkflowExecution{WorkflowId: "driftline-readiness-probe"}})
	if _, notFound := errors.AsType[*serviceerror.NotFound](err); !notFound {
		return fmt.Errorf("history: %v", err)
	}
	_, err = ws.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{Namespace: "default",
		TaskQueue: &taskqueue.TaskQueue{Name: "driftline-readiness-probe"}, TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW})
	if err != nil {
		return fmt.Errorf("matching: %v", err)
	}
	return nil
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

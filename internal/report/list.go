package report

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"dunning/workflows"
)

// pageSize is the visibility page the listing asks for.
const pageSize = 1000

// Query lists every run of a recovery that may hold a life whose first
// failure is at or after since: running, or closed since then.
func Query(since time.Time) string {
	return fmt.Sprintf("WorkflowType = '%s' AND (ExecutionStatus = 'Running' OR CloseTime >= '%s')",
		workflows.PaymentRecoveryWorkflowName, since.UTC().Format(time.RFC3339))
}

// List reads the recoveries' runs from visibility, page by page: each
// with its RecoveryMemo where it keeps one, and what visibility itself
// says of it (status, start, RecoveryStage) for those that keep none.
func List(ctx context.Context, c client.Client, since time.Time) ([]Run, error) {
	dc := converter.GetDefaultDataConverter()
	var runs []Run
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: Query(since), PageSize: pageSize, NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list recoveries: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			r := Run{WorkflowID: id, StartedAt: e.GetStartTime().AsTime(), Status: e.GetStatus()}
			if p, ok := e.GetSearchAttributes().GetIndexedFields()[workflows.RecoveryStageKey.GetName()]; ok {
				var st string
				if err := dc.FromPayload(p, &st); err != nil {
					return nil, fmt.Errorf("%s of %s: %w", workflows.RecoveryStageKey.GetName(), id, err)
				}
				r.Stage = workflows.Stage(st)
			}
			if p, ok := e.GetMemo().GetFields()[workflows.RecoveryMemoKey]; ok {
				var m workflows.RecoveryMemo
				if err := dc.FromPayload(p, &m); err != nil {
					return nil, fmt.Errorf("memo of %s: %w", id, err)
				}
				r.Memo = &m
			}
			runs = append(runs, r)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return runs, nil
		}
	}
}

// Run is one workflow run of a recovery, as visibility lists it.
type Run struct {
	WorkflowID string
	StartedAt  time.Time
	Status     enumspb.WorkflowExecutionStatus
	// Stage is the run's RecoveryStage search attribute ("" when unset).
	Stage workflows.Stage
	// Memo is the run's RecoveryMemo; nil for a run that keeps none.
	Memo *workflows.RecoveryMemo
}

package report

import (
	"context"
	"fmt"
	"time"

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

// List reads the memos of the recoveries' runs from visibility, page by
// page; runs without a RecoveryMemo (begun before it, or with nothing
// recorded yet) are left out.
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
			p, ok := e.GetMemo().GetFields()[workflows.RecoveryMemoKey]
			if !ok {
				continue
			}
			var m workflows.RecoveryMemo
			if err := dc.FromPayload(p, &m); err != nil {
				return nil, fmt.Errorf("memo of %s: %w", e.GetExecution().GetWorkflowId(), err)
			}
			runs = append(runs, Run{StartedAt: e.GetStartTime().AsTime(), Memo: m})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return runs, nil
		}
	}
}

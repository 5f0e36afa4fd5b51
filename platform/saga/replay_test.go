package saga

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded from live runs on
// the stack (integration_test.go with STAMPEDE_RECORD_HISTORY set): a change
// to the workflow that is not replay-safe fails here before it reaches
// running orders.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/history-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories in testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			RegisterWorkflow(r, &Workflow{})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Errorf("replay: %v", err)
			}
		})
	}
}

// TestReplayCatchesAChangedWorkflow proves the replay test can fail: a
// workflow that skips the steps does not match the recorded commands.
func TestReplayCatchesAChangedWorkflow(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in Input) (Result, error) {
		return Result{Status: "delivered"}, workflow.Sleep(ctx, DefaultDeliveryWait)
	}, workflow.RegisterOptions{Name: WorkflowType})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/history-delivered.json"); err == nil {
		t.Error("a different workflow replayed the recorded history without error")
	}
}

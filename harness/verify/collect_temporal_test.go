package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
)

// ReadHistory reads the saga's steps from histories the saga's own tests
// recorded from a real Temporal server (platform/saga/testdata): the same
// markers a chaos run reads, so a change in how the SDK records local
// activities fails here.
func TestReadHistoryOfRecordedRuns(t *testing.T) {
	for _, tc := range []struct {
		file       string
		wantFailed string // the forward step it stopped at, "" none
		business   bool
		wantSteps  string // the local activities, in order
	}{
		{"history-declined.json", "Charge", true, "[Reserve Charge Report ReleaseReservation Report]"},
		{"history-undeliverable.json", "Ship", true, "[Reserve Charge Ship Report RefundCharge ReleaseReservation Report]"},
		{"history-delivered.json", "", false, "[Reserve Charge Ship Report Report]"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "platform", "saga", "testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadHistory(h.GetEvents())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, s := range got.Steps {
				names = append(names, s.Activity)
				if s.End.Before(s.Start) || s.Start.Before(got.Start) || s.Attempts < 1 {
					t.Errorf("step %d %s: %s..%s after %d attempts, want an ordered window after the start %s", i, s.Activity, s.Start, s.End, s.Attempts, got.Start)
				}
				if i > 0 && !s.Start.Equal(got.Steps[i-1].End) {
					t.Errorf("step %d %s starts %s, want the previous step's end %s", i, s.Activity, s.Start, got.Steps[i-1].End)
				}
			}
			if fmt.Sprint(names) != tc.wantSteps {
				t.Errorf("steps %v, want %s", names, tc.wantSteps)
			}
			s := got.failedStep()
			switch {
			case tc.wantFailed == "" && s != nil:
				t.Errorf("failed step %+v, want none", s)
			case tc.wantFailed != "" && (s == nil || s.Activity != tc.wantFailed || s.Business != tc.business || s.Message == ""):
				t.Errorf("failed step %+v, want %s (business %v) with its message", s, tc.wantFailed, tc.business)
			}
			if got.Closed != "Completed" {
				t.Errorf("closed %q, want Completed", got.Closed)
			}
		})
	}
}

func TestReadHistoryRefusesWhatItCannotRead(t *testing.T) {
	if _, err := ReadHistory(nil); err == nil {
		t.Error("an empty history: got no error")
	}
}

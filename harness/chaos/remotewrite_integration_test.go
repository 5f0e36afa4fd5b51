//go:build integration

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
)

// TestRemoteWriteReachesPrometheus pushes a fault-window sample to the
// stack's Prometheus and reads it back with PromQL.
func TestRemoteWriteReachesPrometheus(t *testing.T) {
	base := "http://" + config.Addr(config.Prometheus)
	run := fmt.Sprintf("test-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := RemoteWriter{URL: base + "/api/v1/write"}
	now := time.Now()
	err := w.Push(ctx, []Series{{Labels: map[string]string{"__name__": FaultMetric, "fault": "payments-refused", "run": run}, Value: 1, At: now}})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	q := fmt.Sprintf(`%s{run=%q,fault="payments-refused"}`, FaultMetric, run)
	for ctx.Err() == nil {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q) + fmt.Sprintf("&time=%.3f", float64(now.UnixMilli())/1000))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(body.Data.Result) == 1 {
			if v := body.Data.Result[0].Value[1]; v != "1" {
				t.Errorf("got value %v, want 1", v)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never showed up in Prometheus", q)
}

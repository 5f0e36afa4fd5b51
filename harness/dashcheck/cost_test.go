package dashcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCost(t *testing.T) {
	var exprs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		r.ParseForm()
		e := r.Form.Get("query")
		exprs = append(exprs, e)
		switch {
		case strings.Contains(e, "[900s"):
			if strings.Contains(e, "scrape_samples_scraped") {
				w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[
					{"metric":{"job":"relay","instance":"relay"},"value":[1,"200"]},
					{"metric":{"job":"orders","instance":"orders"},"value":[1,"100"]}]}}`))
				return
			}
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2.5"]}]}}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"window not 900s"}`))
		}
	}))
	defer srv.Close()

	c := &Checker{URL: srv.URL}
	cost, err := c.Cost(context.Background(), 15*time.Minute)
	if err != nil {
		t.Fatalf("cost: %v (queries %q)", err, exprs)
	}
	if cost.CPUMax != 2.5 || cost.RSSMax != 2.5 || cost.RemoteWriteSeen["k6"] != 2.5 {
		t.Errorf("got %+v, want every figure 2.5", cost)
	}
	if len(cost.PerTarget) != 2 || cost.PerTarget[0].Job != "orders" {
		t.Fatalf("per target %+v, want orders then relay", cost.PerTarget)
	}
	var b strings.Builder
	cost.WriteMarkdown(&b)
	for _, want := range []string{"| orders | orders | 100 |", "| relay | relay | 200 |", "**300**", "| CPU, max of 30 s rates | 2.500 cores |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}

	bad := &Checker{URL: srv.URL}
	if _, err := bad.Cost(context.Background(), time.Minute); err == nil {
		t.Error("got no error when Prometheus refused the queries")
	}
}

package stack

import (
	"strings"
	"testing"
	"time"
)

func TestScrapeConfigGroupsMembersIntoJobs(t *testing.T) {
	s := &Stack{Components: []Component{
		{Name: "orders", MetricsAddr: "127.0.0.1:8080"},
		{Name: "redis"}, // no metrics endpoint: not scraped
		{Name: "orchestrator-1", MetricsAddr: "127.0.0.1:8091"},
		{Name: "orchestrator-2", MetricsAddr: "127.0.0.1:8092"},
		{Name: "temporal", MetricsAddr: "127.0.0.1:8234", ScrapeInterval: 10 * time.Second},
	}}
	got := s.ScrapeConfig()
	for _, want := range []string{
		`job_name: "orchestrator"`,
		`targets: ["127.0.0.1:8091"]`,
		`labels: {instance: "orchestrator-2"}`,
		`job_name: "orders"`,
		"scrape_interval: 2s",
		"job_name: \"temporal\"\n    scrape_interval: 10s\n    scrape_timeout: 10s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape config lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "scrape_interval: 10s"); n != 1 {
		t.Errorf("the 10 s interval is set %d times, want once (the temporal job's):\n%s", n, got)
	}
	if strings.Contains(got, "redis") {
		t.Errorf("scrape config scrapes a component without metrics:\n%s", got)
	}
}

package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
)

// ScrapeInterval is short enough that minutes-long load and chaos runs have
// dozens of points per series.
const ScrapeInterval = 2 * time.Second

// Prometheus is the Debian prometheus server scraping every component that
// serves /metrics, with the remote-write receiver on (k6 pushes its metrics
// there) and native histograms enabled (k6 trends).
func Prometheus() Component {
	port := config.Port(config.Prometheus)
	c := Component{Name: config.Prometheus, Port: port, Timeout: 60 * time.Second, MetricsAddr: config.Addr(config.Prometheus)}
	var bin string
	c.Prepare = func(ctx context.Context, s *Stack) error {
		p, err := s.ensureCommand(ctx, "prometheus", "prometheus")
		if err != nil {
			return err
		}
		bin = p
		dir := s.DataDir(config.Prometheus)
		if err := os.MkdirAll(filepath.Join(dir, "tsdb"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(s.ScrapeConfig()), 0o644)
	}
	c.Command = func(s *Stack) (*exec.Cmd, *syscall.Credential, error) {
		dir := s.DataDir(config.Prometheus)
		return exec.Command(bin,
			"--config.file="+filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
			"--storage.tsdb.retention.time=7d",
			"--web.listen-address="+config.Addr(config.Prometheus),
			// k6 pushes its metrics here. The lifecycle API (/-/reload,
			// /-/quit) stays off: any local process could stop Prometheus
			// through it; the launcher reloads with SIGHUP instead.
			"--web.enable-remote-write-receiver",
			"--enable-feature=native-histograms,exemplar-storage",
		), nil, nil
	}
	c.Ready = httpReady("http://" + config.Addr(config.Prometheus) + "/-/ready")
	return c
}

// ScrapeConfig returns the Prometheus configuration scraping every component
// of the stack with a metrics endpoint: job = the component's family
// ("orchestrator"), instance = its name ("orchestrator-2").
func (s *Stack) ScrapeConfig() string {
	jobs := map[string][]Component{}
	for _, c := range s.Components {
		if c.MetricsAddr != "" {
			jobs[group(c.Name)] = append(jobs[group(c.Name)], c)
		}
	}
	names := make([]string, 0, len(jobs))
	for n := range jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by stampede up from the stack's components.
global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
`, ScrapeInterval)
	for _, job := range names {
		fmt.Fprintf(&b, "  - job_name: %s\n", strconv.Quote(job))
		if every := jobs[job][0].ScrapeInterval; every > 0 {
			fmt.Fprintf(&b, "    scrape_interval: %[1]s\n    scrape_timeout: %[1]s\n", every)
		}
		fmt.Fprintf(&b, "    static_configs:\n")
		for _, c := range jobs[job] {
			fmt.Fprintf(&b, "      - targets: [%s]\n        labels: {instance: %s}\n", strconv.Quote(c.MetricsAddr), strconv.Quote(c.Name))
		}
	}
	return b.String()
}

// ReloadPrometheus rewrites the scrape configuration of a running Prometheus
// the stack started when the components changed since it started (a newer
// stampede adding services), and asks it to reload. A stopped or external
// Prometheus is left alone.
func (s *Stack) ReloadPrometheus(ctx context.Context) error {
	if s.Pid(config.Prometheus) == 0 {
		return nil
	}
	path := filepath.Join(s.DataDir(config.Prometheus), "prometheus.yml")
	want := s.ScrapeConfig()
	if have, err := os.ReadFile(path); err == nil && string(have) == want {
		return nil
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		return err
	}
	if _, err := s.Kill(config.Prometheus, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload prometheus: %w", err)
	}
	s.logf("%-16s scrape configuration updated and reloaded (SIGHUP)", config.Prometheus)
	return nil
}

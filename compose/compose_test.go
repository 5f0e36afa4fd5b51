// Package compose holds docker-compose.yml for users who have Docker. No
// Docker engine or registry is reachable where Stampede is developed, so
// this test proves the file the way docker compose itself would read it:
// with compose-spec/compose-go.
package compose

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/stampede-dev/stampede/harness/images"
	"github.com/stampede-dev/stampede/harness/stack"
)

func load(t *testing.T) (*types.Project, string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory(wd),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p, filepath.Dir(wd)
}

// TestComposeLoads: the file loads (schema, interpolation, consistency of
// depends_on and volumes), every service has an image or a build whose
// context and Dockerfile exist, no port is published, and every service
// binds loopback only.
func TestComposeLoads(t *testing.T) {
	p, repo := load(t)
	if p.Name != "stampede" {
		t.Errorf("project name %q, want stampede", p.Name)
	}
	if len(p.Services) == 0 {
		t.Fatal("no services")
	}
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Build != nil {
			if !inside(repo, s.Build.Context) {
				t.Errorf("%s: build context %s is outside the repository", name, s.Build.Context)
			}
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
		}
		if s.NetworkMode != "host" {
			t.Errorf("%s: network_mode %q, want host (every process binds 127.0.0.1 on its default port)", name, s.NetworkMode)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
		{
			// Every image listens on all interfaces unless told otherwise
			// (the platform's own too, for the container networks of
			// stampedetest): on the host's network each must be told loopback.
			all := strings.Join(s.Command, " ") + " " + strings.Join(s.Entrypoint, " ")
			for _, v := range s.Environment {
				if v != nil {
					all += " " + *v
				}
			}
			if !strings.Contains(all, "127.0.0.1") {
				t.Errorf("%s: nothing in its command or environment binds it to 127.0.0.1", name)
			}
		}
	}
}

// TestComposeUsesTheBuiltImages: the platform runs from the images `stampede
// images build` makes (the ones stampedetest runs), nothing is built here, and
// on the host's network no Stampede process or Temporal listens beyond
// loopback.
func TestComposeUsesTheBuiltImages(t *testing.T) {
	p, _ := load(t)
	want := map[string]string{"postgres": images.Postgres, "redis": images.Redis, "kafka": images.Kafka, "temporal": images.Temporal,
		"prometheus": "prom/prometheus:v2.53.2"} // no local image: Debian's prometheus would need a base of its own
	for _, name := range stack.New(stack.Options{Orchestrators: 5, Workers: 2}).Names() {
		if _, ok := want[name]; !ok {
			want[name] = images.Stampede
		}
	}
	want["setup"] = images.Stampede
	for name, ref := range want {
		s, err := p.GetService(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.Image != ref {
			t.Errorf("%s: image %q, want %q (harness/images)", name, s.Image, ref)
		}
		if s.Build != nil {
			t.Errorf("%s: has a build section; `stampede images build` makes the images", name)
		}
		if ref == images.Stampede {
			if v := s.Environment["STAMPEDE_LISTEN_HOST"]; v == nil || *v != "127.0.0.1" {
				t.Errorf("%s: STAMPEDE_LISTEN_HOST must be 127.0.0.1 on the host's network (the image says 0.0.0.0)", name)
			}
		}
		if ref == images.Temporal && (len(s.Entrypoint) == 0 || strings.Contains(strings.Join(s.Entrypoint, " ")+strings.Join(s.Command, " "), "--listen-all")) {
			t.Errorf("%s: must replace the image's entrypoint, whose --listen-all binds every interface", name)
		}
	}
}

// TestComposeMountsExist: every bind-mounted path exists in the repository.
func TestComposeMountsExist(t *testing.T) {
	p, repo := load(t)
	n := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := p.Volumes[v.Source]; !ok && v.Type == types.VolumeTypeVolume {
					t.Errorf("%s: named volume %q is not declared", name, v.Source)
				}
				continue
			}
			n++
			if !inside(repo, v.Source) {
				t.Errorf("%s: mounts %s from outside the repository", name, v.Source)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mounted path: %v", name, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no bind mounts found: the Prometheus configuration and the dashboards must be mounted")
	}
}

// TestComposeProvisionsEveryDashboard: Grafana's dashboard provider points
// at the mount of the repository's dashboards/ directory, so every
// dashboards/*.json is provisioned, and the datasource is this Prometheus.
func TestComposeProvisionsEveryDashboard(t *testing.T) {
	p, repo := load(t)
	g, err := p.GetService("grafana")
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{} // container path -> host path
	for _, v := range g.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[filepath.Clean(v.Target)] = filepath.Clean(v.Source)
		}
	}
	provDir, ok := mounts["/etc/grafana/provisioning"]
	if !ok {
		t.Fatalf("grafana does not mount its provisioning directory; mounts: %v", mounts)
	}

	files, _ := filepath.Glob(filepath.Join(provDir, "dashboards", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no dashboard provider in provisioning/dashboards")
	}
	provisioned := map[string]bool{}
	for _, f := range files {
		var prov struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Name    string `yaml:"name"`
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, f, &prov)
		if prov.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", f, prov.APIVersion)
		}
		for _, pr := range prov.Providers {
			if pr.Type != "file" {
				t.Errorf("%s: provider %s type %q, want file", f, pr.Name, pr.Type)
				continue
			}
			host, ok := mounts[filepath.Clean(pr.Options.Path)]
			if !ok {
				t.Errorf("%s: provider %s reads %s, which grafana does not mount", f, pr.Name, pr.Options.Path)
				continue
			}
			jsons, _ := filepath.Glob(filepath.Join(host, "*.json"))
			for _, j := range jsons {
				provisioned[filepath.Base(j)] = true
			}
		}
	}
	want, _ := filepath.Glob(filepath.Join(repo, "dashboards", "*.json"))
	if len(want) < 5 {
		t.Fatalf("found %d dashboards in dashboards/, want at least 5", len(want))
	}
	for _, w := range want {
		if !provisioned[filepath.Base(w)] {
			t.Errorf("dashboards/%s is not provisioned", filepath.Base(w))
		}
	}

	var dsProv struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	dsFiles, _ := filepath.Glob(filepath.Join(provDir, "datasources", "*.yml"))
	for _, f := range dsFiles {
		readYAML(t, f, &dsProv)
	}
	found := false
	for _, d := range dsProv.Datasources {
		found = found || (d.Type == "prometheus" && d.URL == "http://127.0.0.1:9090")
	}
	if !found {
		t.Errorf("no provisioned prometheus datasource at http://127.0.0.1:9090 in %v", dsFiles)
	}
}

// TestComposeMatchesStack: every component `stampede up` starts is a compose
// service, and every target its Prometheus scrapes is scraped here too, with
// the same job and instance, so the dashboards read the same series.
func TestComposeMatchesStack(t *testing.T) {
	p, _ := load(t)
	s := stack.New(stack.Options{Orchestrators: 5, Workers: 2})
	for _, name := range s.Names() {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("stack component %s has no compose service", name)
		}
	}
	var stackCfg, composeCfg scrapeConfig
	if err := yaml.Unmarshal([]byte(s.ScrapeConfig()), &stackCfg); err != nil {
		t.Fatalf("parse the stack's scrape config: %v", err)
	}
	readYAML(t, "prometheus.yml", &composeCfg)
	have := composeCfg.targets()
	var missing []string
	for k := range stackCfg.targets() {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("compose/prometheus.yml does not scrape (job target instance): %s", strings.Join(missing, "; "))
	}
	if composeCfg.Global.ScrapeInterval != stack.ScrapeInterval.String() {
		t.Errorf("scrape_interval %q, want the stack's %s", composeCfg.Global.ScrapeInterval, stack.ScrapeInterval)
	}
}

type scrapeConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func (c scrapeConfig) targets() map[string]bool {
	m := map[string]bool{}
	for _, j := range c.ScrapeConfigs {
		for _, sc := range j.StaticConfigs {
			for _, tg := range sc.Targets {
				m[j.JobName+" "+tg+" "+sc.Labels["instance"]] = true
			}
		}
	}
	return m
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func inside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

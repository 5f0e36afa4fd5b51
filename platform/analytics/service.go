package analytics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/web"
)

// BuildOptions are what the targets of a rules file are built from.
type BuildOptions struct {
	Client      *kgo.Client  // Kafka targets produce with it
	DataDir     string       // file targets' relative paths start here
	HTTPClient  *http.Client // webhooks; default http.DefaultClient
	EventBridge func(EventBridgeSpec) PutEventsAPI
}

// BuildTargets opens every target of rs. Close them with CloseTargets.
func BuildTargets(rs *Rules, o BuildOptions) (map[string]Target, error) {
	out := map[string]Target{}
	ids := make([]string, 0, len(rs.Targets))
	for id := range rs.Targets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		spec := rs.Targets[id]
		switch {
		case spec.Kafka != nil:
			if o.Client == nil {
				return nil, fmt.Errorf("analytics: target %s: no Kafka client", id)
			}
			out[id] = &KafkaTarget{Client: o.Client, Topic: spec.Kafka.Topic}
		case spec.Webhook != nil:
			out[id] = &WebhookTarget{URL: spec.Webhook.URL, Headers: spec.Webhook.Headers, Client: o.HTTPClient,
				Attempts: spec.Webhook.Attempts, Timeout: spec.Webhook.Timeout, BatchTimeout: spec.Webhook.BatchTimeout}
		case spec.File != nil:
			p := spec.File.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(o.DataDir, p)
			}
			ft, err := OpenFileTarget(p)
			if err != nil {
				CloseTargets(out)
				return nil, err
			}
			out[id] = ft
		case spec.EventBridge != nil:
			if o.EventBridge == nil {
				CloseTargets(out)
				return nil, fmt.Errorf("analytics: target %s: EventBridge is off", id)
			}
			out[id] = &EventBridgeTarget{API: o.EventBridge(*spec.EventBridge), Bus: spec.EventBridge.bus()}
		}
	}
	return out, nil
}

// CloseTargets closes the targets that hold resources.
func CloseTargets(ts map[string]Target) error {
	var errs []error
	for _, t := range ts {
		if c, ok := t.(Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// KafkaTopics lists the topics Kafka targets produce to, for creating them
// when missing.
func (rs *Rules) KafkaTopics() []kafka.TopicSpec {
	var out []kafka.TopicSpec
	for _, t := range rs.Targets {
		if t.Kafka != nil {
			out = append(out, kafka.TopicSpec{Name: t.Kafka.Topic, Partitions: 6})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Service is the router's HTTP side: health, readiness and the loaded rules.
type Service struct {
	Rules *Rules
	Ready func(context.Context) error
}

type ruleView struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Topics      []string     `json:"topics,omitempty"`
	Pattern     any          `json:"pattern"`
	Targets     []targetView `json:"targets"`
}

type targetView struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	TargetSpec
}

// Router returns the HTTP routes: /healthz, /readyz, GET /v1/rules.
func (s *Service) Router() *http.ServeMux {
	mux := http.NewServeMux()
	web.HandleHealth(mux, s.Ready)
	mux.HandleFunc("GET /v1/rules", func(w http.ResponseWriter, r *http.Request) {
		rules := make([]ruleView, 0, len(s.Rules.Rules))
		for _, rule := range s.Rules.Rules {
			v := ruleView{Name: rule.Name, Description: rule.Description, Topics: rule.Topics, Pattern: jsonable(rule.Pattern)}
			for _, id := range rule.targets {
				spec := s.Rules.Targets[id]
				v.Targets = append(v.Targets, targetView{ID: id, Label: spec.Label(), TargetSpec: spec})
			}
			rules = append(rules, v)
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"topics": s.Rules.ConsumedTopics(), "rules": rules})
	})
	return mux
}

// jsonable turns YAML's map[any]any, if any, into JSON-encodable maps.
func jsonable(v any) any {
	if m, ok := asMap(v); ok {
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = jsonable(x)
		}
		return out
	}
	if l, ok := v.([]any); ok {
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = jsonable(x)
		}
		return out
	}
	return v
}

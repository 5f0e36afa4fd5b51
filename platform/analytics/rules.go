package analytics

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/stampede-dev/stampede/platform/event"
)

// DefaultRules is the rules file the router loads when none is given.
//
//go:embed rules/default.yaml
var DefaultRules []byte

// RulesFile is the YAML rules file.
type RulesFile struct {
	// Topics are consumed besides event.TopicAnalytics.
	Topics []string   `yaml:"topics" json:"topics"`
	Rules  []RuleSpec `yaml:"rules" json:"rules"`
}

// RuleSpec is one rule: events matching Pattern go to every target.
type RuleSpec struct {
	Name        string       `yaml:"name" json:"name"`
	Description string       `yaml:"description,omitempty" json:"description,omitempty"`
	Topics      []string     `yaml:"topics,omitempty" json:"topics,omitempty"` // only events from these topics; all when empty
	Pattern     any          `yaml:"pattern" json:"pattern"`
	Targets     []TargetSpec `yaml:"targets" json:"targets"`
}

// TargetSpec names exactly one target kind.
type TargetSpec struct {
	Name        string           `yaml:"name,omitempty" json:"name,omitempty"` // metrics label; defaults to kind:destination
	Kafka       *KafkaSpec       `yaml:"kafka,omitempty" json:"kafka,omitempty"`
	Webhook     *WebhookSpec     `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	File        *FileSpec        `yaml:"file,omitempty" json:"file,omitempty"`
	EventBridge *EventBridgeSpec `yaml:"eventbridge,omitempty" json:"eventbridge,omitempty"`
}

// KafkaSpec produces matched events, unchanged, to Topic.
type KafkaSpec struct {
	Topic string `yaml:"topic" json:"topic"`
}

// WebhookSpec POSTs each matched envelope to URL.
type WebhookSpec struct {
	URL      string            `yaml:"url" json:"url"`
	Headers  map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Attempts int               `yaml:"attempts,omitempty" json:"attempts,omitempty"` // per event, in total; default 3
	Timeout  time.Duration     `yaml:"timeout,omitempty" json:"timeout,omitempty"`   // per attempt; default 5s
	// BatchTimeout bounds one batch of events to the webhook (default 30s):
	// events not acknowledged by then are dead-lettered.
	BatchTimeout time.Duration `yaml:"batchTimeout,omitempty" json:"batchTimeout,omitempty"`
}

// FileSpec appends matched envelopes, one JSON line each, to Path
// (relative to the router's data directory unless absolute).
type FileSpec struct {
	Path string `yaml:"path" json:"path"`
}

// EventBridgeSpec calls PutEvents on an event bus.
type EventBridgeSpec struct {
	Bus      string `yaml:"bus" json:"bus"`                               // event bus name or ARN; default "default"
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"` // overrides the router's --eventbridge-endpoint
	Region   string `yaml:"region,omitempty" json:"region,omitempty"`
}

// Rule is a validated rule with its compiled pattern.
type Rule struct {
	RuleSpec
	pattern *Pattern
	topics  map[string]bool
	targets []string // target ids, see TargetSpec.ID
}

// Matches reports whether an event read from topic matches the rule.
func (r *Rule) Matches(topic string, ev map[string]any) bool {
	if len(r.topics) > 0 && !r.topics[topic] {
		return false
	}
	return r.pattern.Match(ev)
}

// Rules is a validated rules file.
type Rules struct {
	File    RulesFile
	Rules   []*Rule
	Targets map[string]TargetSpec // by ID
}

// ConsumedTopics is event.TopicAnalytics plus the topics the file lists.
func (rs *Rules) ConsumedTopics() []string {
	out := []string{event.TopicAnalytics}
	seen := map[string]bool{event.TopicAnalytics: true}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, t := range rs.File.Topics {
		add(t)
	}
	for _, r := range rs.Rules {
		for _, t := range r.Topics {
			add(t)
		}
	}
	return out
}

// LoadOptions say which target kinds a rules file may use.
type LoadOptions struct {
	EventBridge bool // EventBridge targets are off unless the router is started with them on
}

// ParseRules reads and validates a rules file. Errors name the rule and the
// field, e.g. `rule "high-value": pattern.data.totalCents: numeric wants
// pairs of operator and number`.
func ParseRules(b []byte, opts LoadOptions) (*Rules, error) {
	var f RulesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("analytics: rules file is empty")
		}
		return nil, fmt.Errorf("analytics: rules file: %w", err)
	}
	if len(f.Rules) == 0 {
		return nil, errors.New("analytics: rules file: rules: no rule")
	}
	for i, t := range f.Topics {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("analytics: rules file: topics[%d]: empty topic name", i)
		}
		if !validTopic(t) {
			return nil, fmt.Errorf("analytics: rules file: topics[%d]: %s", i, topicRule)
		}
	}
	rs := &Rules{File: f, Targets: map[string]TargetSpec{}}
	seen := map[string]bool{}
	for i, spec := range f.Rules {
		if spec.Name == "" {
			return nil, fmt.Errorf("analytics: rules[%d].name: missing", i)
		}
		if !validName(spec.Name) {
			return nil, fmt.Errorf("analytics: rules[%d].name: %.80q: %s", i, spec.Name, nameRule)
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("analytics: rule %q: name: used by an earlier rule too", spec.Name)
		}
		seen[spec.Name] = true
		wrap := func(err error) error { return fmt.Errorf("analytics: rule %q: %w", spec.Name, err) }
		if !event.ValidText(spec.Description, 500) {
			return nil, wrap(errAt("description", "want at most 500 characters of text"))
		}
		if spec.Pattern == nil {
			return nil, wrap(errAt("pattern", "missing"))
		}
		p, err := CompilePattern(spec.Pattern, "pattern")
		if err != nil {
			return nil, wrap(err)
		}
		r := &Rule{RuleSpec: spec, pattern: p}
		if len(spec.Topics) > 0 {
			r.topics = map[string]bool{}
			for j, t := range spec.Topics {
				if strings.TrimSpace(t) == "" {
					return nil, wrap(errAt(fmt.Sprintf("topics[%d]", j), "empty topic name"))
				}
				if !validTopic(t) {
					return nil, wrap(errAt(fmt.Sprintf("topics[%d]", j), "%s", topicRule))
				}
				r.topics[t] = true
			}
		}
		if len(spec.Targets) == 0 {
			return nil, wrap(errAt("targets", "a rule needs at least one target"))
		}
		for j, t := range spec.Targets {
			id, err := t.validate(fmt.Sprintf("targets[%d]", j), opts)
			if err != nil {
				return nil, wrap(err)
			}
			if prev, ok := rs.Targets[id]; ok && prev.Name != t.Name {
				return nil, wrap(errAt(fmt.Sprintf("targets[%d].name", j), "target %s is named %q elsewhere", id, prev.Name))
			}
			rs.Targets[id] = t
			r.targets = append(r.targets, id)
		}
		rs.Rules = append(rs.Rules, r)
	}
	return rs, nil
}

// nameRule is what a rule's or a target's name may be: it is a metrics
// label, the X-Stampede-Rule header of every webhook call and part of a
// dead letter's reason.
const nameRule = "want 1-64 letters, digits and . _ : -"

func validName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// topicRule is Kafka's rule for a topic name.
const topicRule = "not a Kafka topic name: want 1-249 letters, digits and . _ -"

func validTopic(s string) bool {
	if len(s) < 1 || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ID identifies the destination of a target; rules sharing a destination
// share the target (one file writer, one producer).
func (t TargetSpec) ID() string {
	switch {
	case t.Kafka != nil:
		return "kafka:" + t.Kafka.Topic
	case t.Webhook != nil:
		return "webhook:" + t.Webhook.URL
	case t.File != nil:
		return "file:" + filepath.Clean(t.File.Path)
	case t.EventBridge != nil:
		return "eventbridge:" + t.EventBridge.bus() + "@" + t.EventBridge.Endpoint
	}
	return ""
}

// Label is the metrics label of the target.
func (t TargetSpec) Label() string {
	if t.Name != "" {
		return t.Name
	}
	return t.ID()
}

func (e *EventBridgeSpec) bus() string {
	if e.Bus == "" {
		return "default"
	}
	return e.Bus
}

func (t TargetSpec) validate(path string, opts LoadOptions) (string, error) {
	n := 0
	for _, set := range []bool{t.Kafka != nil, t.Webhook != nil, t.File != nil, t.EventBridge != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return "", errAt(path, "needs exactly one of kafka, webhook, file, eventbridge (got %d)", n)
	}
	if t.Name != "" && !validName(t.Name) {
		return "", errAt(path+".name", "%s", nameRule)
	}
	switch {
	case t.Kafka != nil:
		if strings.TrimSpace(t.Kafka.Topic) == "" {
			return "", errAt(path+".kafka.topic", "missing")
		}
		if !validTopic(t.Kafka.Topic) {
			return "", errAt(path+".kafka.topic", "%s", topicRule)
		}
		if t.Kafka.Topic == event.TopicAnalytics {
			return "", errAt(path+".kafka.topic", "routing back to %q would loop", event.TopicAnalytics)
		}
	case t.Webhook != nil:
		u, err := url.Parse(t.Webhook.URL)
		if t.Webhook.URL == "" {
			return "", errAt(path+".webhook.url", "missing")
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errAt(path+".webhook.url", "%q is not an http(s) URL", t.Webhook.URL)
		}
		if t.Webhook.Attempts < 0 || t.Webhook.Attempts > 20 {
			return "", errAt(path+".webhook.attempts", "must be between 1 and 20")
		}
		if t.Webhook.Timeout < 0 || t.Webhook.Timeout > MaxWebhookTimeout {
			return "", errAt(path+".webhook.timeout", "must be between 0 (the default, %s) and %s", DefaultWebhookTimeout, MaxWebhookTimeout)
		}
		if t.Webhook.BatchTimeout < 0 || t.Webhook.BatchTimeout > 10*time.Minute {
			return "", errAt(path+".webhook.batchTimeout", "must be between 0 (the default, %s) and 10m", DefaultWebhookBatchTimeout)
		}
		if len(t.Webhook.Headers) > 32 {
			return "", errAt(path+".webhook.headers", "at most 32 headers")
		}
		for k, v := range t.Webhook.Headers {
			if !httpguts.ValidHeaderFieldName(k) {
				return "", errAt(path+".webhook.headers", "%.80q is not a header name", k)
			}
			if !httpguts.ValidHeaderFieldValue(v) || len(v) > 4096 {
				return "", errAt(path+".webhook.headers."+k, "want at most 4096 bytes without control characters")
			}
		}
	case t.File != nil:
		p := t.File.Path
		if strings.TrimSpace(p) == "" {
			return "", errAt(path+".file.path", "missing")
		}
		if !filepath.IsAbs(p) && strings.HasPrefix(filepath.Clean(p), "..") {
			return "", errAt(path+".file.path", "%q leaves the data directory", p)
		}
	case t.EventBridge != nil:
		if !opts.EventBridge {
			return "", errAt(path+".eventbridge", "EventBridge targets are off; start the router with --eventbridge")
		}
		if t.EventBridge.Endpoint != "" {
			if u, err := url.Parse(t.EventBridge.Endpoint); err != nil || u.Host == "" {
				return "", errAt(path+".eventbridge.endpoint", "%q is not a URL", t.EventBridge.Endpoint)
			}
		}
	}
	return t.ID(), nil
}

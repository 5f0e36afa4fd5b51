package analytics

import (
	"strings"
	"testing"
)

func TestDefaultRulesLoad(t *testing.T) {
	rs, err := ParseRules(DefaultRules, LoadOptions{})
	if err != nil {
		t.Fatalf("default rules: %v", err)
	}
	var names []string
	for _, r := range rs.Rules {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "high-value-orders,failed-orders"; got != want {
		t.Fatalf("rules = %s, want %s", got, want)
	}
	if got := rs.ConsumedTopics(); len(got) != 1 || got[0] != "analytics" {
		t.Fatalf("ConsumedTopics() = %v, want [analytics]", got)
	}
	if got := rs.KafkaTopics(); len(got) != 1 || got[0].Name != "analytics.high-value" {
		t.Fatalf("KafkaTopics() = %v", got)
	}
	high := map[string]any{"type": "analytics.order_created", "data": map[string]any{"totalCents": 50001.0}}
	edge := map[string]any{"type": "analytics.order_created", "data": map[string]any{"totalCents": 50000.0}}
	failed := map[string]any{"type": "analytics.order_outcome", "data": map[string]any{"status": "cancelled"}}
	ok := map[string]any{"type": "analytics.order_outcome", "data": map[string]any{"status": "completed"}}
	for _, c := range []struct {
		rule int
		ev   map[string]any
		want bool
	}{{0, high, true}, {0, edge, false}, {1, failed, true}, {1, ok, false}, {1, high, false}} {
		if got := rs.Rules[c.rule].Matches("analytics", c.ev); got != c.want {
			t.Errorf("rule %s on %v = %v, want %v", rs.Rules[c.rule].Name, c.ev, got, c.want)
		}
	}
}

func TestRulesErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"err/empty file", ``, "rules file is empty"},
		{"err/no rules", `rules: []`, "rules: no rule"},
		{"err/unknown key", "rules:\n  - name: a\n    patern: {type: [x]}\n", "field patern not found"},
		{"err/missing name", "rules:\n  - pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n", "rules[0].name: missing"},
		{"err/duplicate name", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n",
			`rule "a": name: used by an earlier rule`},
		{"err/missing pattern", "rules:\n  - name: a\n    targets: [{kafka: {topic: t}}]\n", `rule "a": pattern: missing`},
		{"err/numeric", "rules:\n  - name: high-value\n    pattern:\n      data:\n        totalCents: [{numeric: [\">\"]}]\n    targets: [{kafka: {topic: t}}]\n",
			`rule "high-value": pattern.data.totalCents: numeric wants pairs of operator and number`},
		{"err/leaf scalar", "rules:\n  - name: a\n    pattern: {type: x}\n    targets: [{kafka: {topic: t}}]\n", `rule "a": pattern.type: must be a list`},
		{"err/no targets", "rules:\n  - name: a\n    pattern: {type: [x]}\n", `rule "a": targets: a rule needs at least one target`},
		{"err/two kinds", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}, file: {path: f}}]\n", `rule "a": targets[0]: needs exactly one of`},
		{"err/kafka topic missing", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {}}]\n", `rule "a": targets[0].kafka.topic: missing`},
		{"err/kafka loop", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: analytics}}]\n", `rule "a": targets[0].kafka.topic: routing back`},
		{"err/webhook url", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{webhook: {url: 'ftp://x'}}]\n", `rule "a": targets[0].webhook.url: "ftp://x" is not an http(s) URL`},
		{"err/file escapes", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{file: {path: ../../etc/x}}]\n", `rule "a": targets[0].file.path: "../../etc/x" leaves the data directory`},
		{"err/eventbridge off", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{eventbridge: {bus: b}}]\n", `rule "a": targets[0].eventbridge: EventBridge targets are off`},
		{"err/empty topic", "topics: ['']\nrules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n", "topics[0]: empty topic name"},
		// Names and headers become metric labels and HTTP headers: bounded.
		{"err/rule name with a newline", "rules:\n  - name: \"a\\nb\"\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n", "rules[0].name"},
		{"err/rule name too long", "rules:\n  - name: " + strings.Repeat("n", 65) + "\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n", "rules[0].name"},
		{"err/target name with a space", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{name: 'my hook', kafka: {topic: t}}]\n", `rule "a": targets[0].name`},
		{"err/kafka topic not a topic name", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: 'a/b'}}]\n", `rule "a": targets[0].kafka.topic: not a Kafka topic name`},
		{"err/rule topic not a topic name", "rules:\n  - name: a\n    topics: ['a b']\n    pattern: {type: [x]}\n    targets: [{kafka: {topic: t}}]\n", `rule "a": topics[0]: not a Kafka topic name`},
		{"err/webhook header value with a newline", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{webhook: {url: 'http://x', headers: {X-A: \"b\\nc\"}}}]\n", `rule "a": targets[0].webhook.headers.X-A`},
		{"err/webhook header name", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{webhook: {url: 'http://x', headers: {'X A': b}}}]\n", `rule "a": targets[0].webhook.headers`},
		{"err/webhook timeout over a minute", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{webhook: {url: 'http://x', timeout: 2m}}]\n", `rule "a": targets[0].webhook.timeout`},
		{"err/webhook batch timeout", "rules:\n  - name: a\n    pattern: {type: [x]}\n    targets: [{webhook: {url: 'http://x', batchTimeout: 1h}}]\n", `rule "a": targets[0].webhook.batchTimeout`},
		{"err/pattern too deep", "rules:\n  - name: a\n    pattern: " + strings.Repeat("{a: ", 40) + "[x]" + strings.Repeat("}", 40) + "\n    targets: [{kafka: {topic: t}}]\n", "nested deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.yaml), LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseRules error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRulesExtraTopicsAndSharedTargets(t *testing.T) {
	rs, err := ParseRules([]byte(`
topics: [orders]
rules:
  - name: a
    topics: [payments]
    pattern: {source: [x]}
    targets: [{file: {path: out.jsonl}}, {webhook: {url: "http://127.0.0.1:1/h", attempts: 2, timeout: 1s}}]
  - name: b
    pattern: {source: [y]}
    targets: [{file: {path: ./out.jsonl}}]
`), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rs.ConsumedTopics(), ","); got != "analytics,orders,payments" {
		t.Fatalf("ConsumedTopics() = %s", got)
	}
	if len(rs.Targets) != 2 {
		t.Fatalf("targets = %v, want the file shared by both rules", rs.Targets)
	}
	if rs.Rules[0].Matches("analytics", map[string]any{"source": "x"}) {
		t.Fatal("rule limited to payments matched an event from analytics")
	}
	if !rs.Rules[0].Matches("payments", map[string]any{"source": "x"}) {
		t.Fatal("rule limited to payments did not match an event from payments")
	}
	if wh := rs.Targets["webhook:http://127.0.0.1:1/h"].Webhook; wh.Timeout.Seconds() != 1 || wh.Attempts != 2 {
		t.Fatalf("webhook spec = %+v", wh)
	}
}

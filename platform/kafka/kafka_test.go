package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics creates what is missing with its configs, sets the configs
// of topics that already exist, and is idempotent.
func TestEnsureTopicsCreatesAndKeepsConfigs(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "old"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	specs := []TopicSpec{
		{Name: "new", Partitions: 4, Configs: appendTime},
		{Name: "old", Partitions: 3, Configs: appendTime},
		{Name: "plain", Partitions: 2},
	}
	for i := 0; i < 2; i++ { // the second run finds everything in place
		if err := EnsureTopics(ctx, cl, specs, 1); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "new", "old", "plain")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td["new"].Partitions); got != 4 {
		t.Errorf("new: %d partitions, want 4", got)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "new", "old")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		var got string
		for _, cfg := range rc.Configs {
			if cfg.Key == "message.timestamp.type" {
				got = cfg.MaybeValue()
			}
		}
		if got != "LogAppendTime" {
			t.Errorf("%s: message.timestamp.type = %q, want LogAppendTime", rc.Name, got)
		}
	}
}

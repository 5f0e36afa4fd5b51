//go:build integration

package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	_ "github.com/stampede-dev/stampede/platform/stacktest" // STAMPEDE_HOME: the stack's secrets
)

// The SASL path, end to end against the stack's broker: its SASL_PLAINTEXT
// listener takes SCRAM-SHA-256 from the user stampede up created, with the
// STAMPEDE_KAFKA_SASL_* settings every process reads through BaseOpts. A
// record produced through it is consumed back through it; a wrong password
// is refused, and says so.
func TestSCRAMListener(t *testing.T) {
	sasl := []string{config.Addr(config.KafkaSASL)}
	t.Setenv(kafka.EnvSASLMechanism, "SCRAM-SHA-256")
	t.Setenv(kafka.EnvSASLUser, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := kafka.Ping(ctx, sasl); err != nil {
		t.Fatalf("SCRAM-SHA-256 on %s with the stack's password: %v", sasl[0], err)
	}
	topic := fmt.Sprintf("sasl-test-%d", time.Now().UnixNano())
	cl, err := kgo.NewClient(append(kafka.BaseOpts("sasl-test", sasl), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, cl, []kafka.TopicSpec{{Name: topic, Partitions: 1}}, 1); err != nil {
		t.Fatalf("create %s through SASL: %v", topic, err)
	}
	defer adm.DeleteTopics(context.Background(), topic)
	want := "through SCRAM at " + time.Now().Format(time.RFC3339Nano)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("produce through SASL: %v", err)
	}
	var got string
	for got == "" && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("consume through SASL: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) })
	}
	if got != want {
		t.Fatalf("consumed %q, want %q", got, want)
	}

	// The PLAINTEXT listener the platform uses is unchanged.
	t.Setenv(kafka.EnvSASLMechanism, "")
	if err := kafka.Ping(ctx, config.KafkaBrokers()); err != nil {
		t.Fatalf("PLAINTEXT beside SASL: %v", err)
	}

	t.Setenv(kafka.EnvSASLMechanism, "SCRAM-SHA-256")
	t.Setenv(config.SecretEnv(config.SecretKafkaSASLPassword), "not-the-password")
	err = kafka.Ping(ctx, sasl)
	if err == nil {
		t.Fatal("SCRAM with a wrong password was let in")
	}
	if !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED (and no password)", err)
	}
	t.Logf("wrong password: %v", err)
}

//go:build integration

package rebalance_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/harness/rebalance"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/orchestrator"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

const partitions = 12

// TestRebalanceAfterSIGKILL starts three orchestrator processes (bin/stampede,
// a group and a 12-partition topic of their own, the stack's Kafka and
// Temporal), SIGKILLs one, and measures how long its partitions stay
// unowned. It prints the figure, for both group protocols.
func TestRebalanceAfterSIGKILL(t *testing.T) {
	for _, proto := range []string{"consumer", "classic"} {
		t.Run(proto, func(t *testing.T) { measureProtocol(t, proto) })
	}
}

type member struct {
	id   string // client id
	cmd  *exec.Cmd
	port int
	log  string
	done chan struct{}
}

func measureProtocol(t *testing.T, proto string) {
	bin := stacktest.Bin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	suffix := uuid.NewString()[:8]
	topic, ship, dlq := "test-rebalance-"+suffix, "test-rebalance-ship-"+suffix, "test-rebalance-dlq-"+suffix
	group := "test-rebalance-" + proto + "-" + suffix

	cl, err := kgo.NewClient(kafka.BaseOpts("rebalance-test", config.KafkaBrokers())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close) // after the cleanup below, which uses it
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, cl, []kafka.TopicSpec{{Name: topic, Partitions: partitions}, {Name: ship, Partitions: 1}, {Name: dlq, Partitions: 1}}, 1); err != nil {
		t.Fatalf("the stack's Kafka is not reachable (run with `make test`): %v", err)
	}
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), 10*time.Second)
		defer cc()
		adm.DeleteGroup(c, group)
		adm.DeleteTopics(c, topic, ship, dlq)
		if proto == "consumer" { // the members set the group's session timeout; drop it with the group
			if err := orchestrator.SetGroupSessionTimeout(c, cl, group, 0, 0); err != nil {
				t.Logf("clear group config: %v", err)
			}
		}
	})

	var members []*member
	for i := 1; i <= 3; i++ {
		m := &member{id: fmt.Sprintf("orchestrator-rb-%s-%d", suffix, i), port: freePort(t), done: make(chan struct{})}
		m.log = filepath.Join(t.TempDir(), fmt.Sprintf("member-%d.log", i))
		out, err := os.Create(m.log)
		if err != nil {
			t.Fatal(err)
		}
		m.cmd = exec.Command(bin, "serve", "orchestrator",
			"--port", strconv.Itoa(m.port),
			"--group", group, "--group-protocol", proto,
			"--instance", strings.TrimPrefix(m.id, "orchestrator-"),
			"--orders-topic", topic, "--shipping-topic", ship, "--dlq-topic", dlq)
		m.cmd.Stdout, m.cmd.Stderr = out, out
		if err := m.cmd.Start(); err != nil {
			t.Fatalf("start member %d: %v", i, err)
		}
		go func() { m.cmd.Wait(); out.Close(); close(m.done) }()
		members = append(members, m)
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, m := range members {
			select {
			case <-m.done:
			case <-time.After(20 * time.Second):
				m.cmd.Process.Kill()
				<-m.done
				t.Errorf("member %s did not stop within 20 s of SIGTERM", m.id)
			}
		}
		if t.Failed() {
			for _, m := range members {
				t.Logf("--- %s log:\n%s", m.id, tail(m.log, 30))
			}
		}
	})
	for _, m := range members {
		stacktest.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", m.port), 30*time.Second)
	}

	// Stable: the rebalance is over (every member holds its target), three
	// members, every partition owned, each member owning some.
	var before rebalance.Snapshot
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := rebalance.Describe(ctx, adm, group, topic)
		if err == nil && s.Settled && len(s.Members) == 3 && len(s.Owners) == partitions &&
			len(s.OwnedBy(members[0].id)) > 0 && len(s.OwnedBy(members[1].id)) > 0 && len(s.OwnedBy(members[2].id)) > 0 {
			before = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with 3 members after 60 s: %+v (err %v)", group, s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("before: protocol %s, owners %v", before.Protocol, before.Owners)
	if proto == "consumer" && before.Protocol != "consumer" {
		t.Errorf("group protocol seen by the broker = %s, want consumer (KIP-848)", before.Protocol)
	}

	victim := members[0]
	res, err := rebalance.Measure(ctx, adm, group, topic, partitions, victim.id, func() error {
		return victim.cmd.Process.Signal(syscall.SIGKILL)
	}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("rebalance (%s protocol, 3 members, %d partitions): SIGKILLed member's partitions %v unowned for %s (member dropped by the broker after %s, %d samples at 50 ms); survivors' partitions disturbed: %v",
		res.Protocol, partitions, res.Moved, res.Unowned.Round(time.Millisecond), res.MemberGone.Round(time.Millisecond), res.Samples, res.Disturbed)
	t.Log(msg)
	fmt.Println(msg)
	if res.Unowned >= 30*time.Second {
		t.Errorf("partitions unowned for %s, want < 30 s", res.Unowned)
	}
	if len(res.Disturbed) > 0 {
		t.Errorf("partitions %v of surviving members moved: one member's death must move only its partitions", res.Disturbed)
	}
	for _, p := range res.Moved {
		if o := res.After.Owners[p]; o != members[1].id && o != members[2].id {
			t.Errorf("partition %d owned by %q after the rebalance, want a survivor", p, o)
		}
	}

	// The survivors themselves agree: their assigned-partitions gauges add up to 12.
	waitFor(t, "survivors report all 12 partitions assigned", 15*time.Second, func() bool {
		return gauge(members[1].port, topic)+gauge(members[2].port, topic) == partitions
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gauge reads stampede_orchestrator_assigned_partitions of topic from a member's /metrics (-1 when unreadable).
func gauge(port int, topic string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, `stampede_orchestrator_assigned_partitions{topic="`+topic+`"} `); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/server/common/dynamicconfig"
	"gopkg.in/yaml.v3"
)

// tunedDynamicConfig is the dynamic config for one 2-core machine that runs
// the whole Stampede stack and ~25-40 order sagas/s (each saga: ~5 activities
// and a 1 s timer, so ~25-30 frontend calls and ~10 history writes per saga).
//
// What was chosen, and why:
//
//   - matching.numTaskqueue{Read,Write}Partitions 4 -> 1. Partitions spread a
//     hot task queue over several matching hosts; here there is one host and
//     one worker fleet. With 4, each poller waits on one partition, a task that
//     lands on a partition without a waiting poller is forwarded to the root,
//     and every partition keeps its own lease and ack level in the database.
//     One partition means every poll can take every task (more sync matches,
//     fewer polls, fewer task-queue writes).
//   - frontend.rps and frontend.namespaceRPS 2400 -> 10000. 40 sagas/s is
//     ~1,200 calls/s before polls and retries, and the limiter's burst is only
//     2x: draining a backlog after a restart would be answered with
//     ResourceExhausted. On 2 cores the CPU is the real limit, not a token bucket.
//   - frontend.namespaceRPS.visibility 10 -> 100, as the Temporal CLI's dev
//     server does: the Web UI, the launcher and the load checker list and count
//     workflows, and 10/s starves them.
//   - history.shardIOTimeout 5s -> 15s. With one SQLite writer, a burst queues
//     writes behind each other; a write that waits past the timeout fails the
//     shard operation, and the retries add load exactly when there is none to
//     spare. A longer timeout turns overload into latency instead of errors.
//   - The persistence QPS limits (history 9000, matching 3000, frontend 2000,
//     visibility 9000) are left at their defaults: they are an order of
//     magnitude above what this load needs (~400 writes/s) and above what
//     SQLite on this disk can do, so raising them would change nothing.
//   - history.hostLevelCacheMaxSize 128000 -> 2048 workflows. The mutable
//     state cache kept every saga of the last hour (TTL 1 h): each order's
//     saga is touched at its start and first task and then waits for days, so
//     a chaos run's 3000 sagas stayed cached, the live heap grew to ~350 MB,
//     and every garbage collection (every ~80 s at GOGC 400) marked all of it:
//     one core for one to two seconds, and the orchestrators' workflow starts
//     waited behind it (consumer lag spikes in `stampede chaos`). 2048 holds
//     more than a minute of sagas at a 20/s peak; a later touch (the delivery
//     signal) reads the workflow back from the store.
//   - Eager activity dispatch (system.enableActivityEagerExecution) and eager
//     workflow start are on by default in v1.32: a workflow task completion that
//     schedules an activity on the same task queue gets the activity back in
//     the same response, skipping matching. They are stated here so an upgrade
//     that flips a default does not silently cost throughput.
//
// history.shardIOConcurrency is raised from 1: a shard serialises its
// workflow writes through a semaphore of that size, held for the whole
// persistence call (encoding the mutable state included). For PostgreSQL it
// is 4 (see postgresDynamicConfig): with 4 shards and concurrency 1 only four
// commits can be in flight. For SQLite it is the connections per file
// (--sqlite-conns, see sqliteDynamicConfig): the SQL of the writes still goes
// one at a time through the write lock (writelock.go), but what a write does
// outside its transaction no longer holds up the next one. In a short chaos
// run, at 1 the semaphore's wait was the largest part of a workflow start
// after a Payments fault (p99 145-166 ms of a 150 ms history start); at 4
// the history start's p99 stayed at 30 ms or under.
func tunedDynamicConfig() map[string]any {
	return map[string]any{
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key().String():           1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key().String():          1,
		dynamicconfig.FrontendRPS.Key().String():                                  10000,
		dynamicconfig.FrontendMaxNamespaceRPSPerInstance.Key().String():           10000,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key().String(): 100,
		dynamicconfig.ShardIOTimeout.Key().String():                               15 * time.Second,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key().String():                 2048,
		dynamicconfig.EnableActivityEagerExecution.Key().String():                 true,
		dynamicconfig.EnableEagerWorkflowStart.Key().String():                     true,
	}
}

// postgresDynamicConfig is added to tunedDynamicConfig when history lives in
// PostgreSQL.
func postgresDynamicConfig() map[string]any {
	return map[string]any{
		dynamicconfig.ShardIOConcurrency.Key().String(): 4,
	}
}

// sqliteDynamicConfig is added to tunedDynamicConfig when history lives in
// SQLite with conns connections per file.
func sqliteDynamicConfig(conns int) map[string]any {
	return map[string]any{
		dynamicconfig.ShardIOConcurrency.Key().String(): conns,
	}
}

// parseDynamicConfig turns KEY=VALUE pairs into dynamic config values. VALUE
// is YAML, so numbers, booleans and durations ("5s") arrive typed the way the
// server's own YAML file would give them.
func parseDynamicConfig(pairs []string) (map[string]any, error) {
	out := make(map[string]any, len(pairs))
	for _, p := range pairs {
		key, raw, ok := strings.Cut(p, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("--dynamic-config %q: want KEY=VALUE", p)
		}
		var v any
		if err := yaml.Unmarshal([]byte(raw), &v); err != nil {
			return nil, fmt.Errorf("--dynamic-config %q: value is not YAML: %w", p, err)
		}
		out[key] = v
	}
	return out, nil
}

// buildDynamicConfig merges the tuned defaults, the backend's extras and the
// user's overrides, in that order.
func buildDynamicConfig(persistence string, sqliteConns int, overrides []string) (dynamicconfig.StaticClient, error) {
	user, err := parseDynamicConfig(overrides)
	if err != nil {
		return nil, err
	}
	client := dynamicconfig.StaticClient{}
	layers := []map[string]any{tunedDynamicConfig()}
	switch persistence {
	case persistencePostgres:
		layers = append(layers, postgresDynamicConfig())
	case persistenceSQLite:
		layers = append(layers, sqliteDynamicConfig(sqliteConns))
	}
	layers = append(layers, user)
	for _, layer := range layers {
		for k, v := range layer {
			client[dynamicconfig.MakeKey(k)] = v
		}
	}
	return client, nil
}

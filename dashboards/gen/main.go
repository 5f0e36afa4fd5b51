// Command gen writes Stampede's Grafana dashboards (dashboards/*.json) from
// the definitions below, so that every panel uses the templated datasource,
// the job and instance variables, and ids and positions that cannot clash.
//
//	go run ./dashboards/gen            # rewrite dashboards/*.json
//	go run ./dashboards/gen -check     # fail if a file differs from its definition
//
// Every query here must return data after `make chaos PROFILE=short`:
// `stampede dashboards check` proves it against the live Prometheus.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "dashboards", "where the dashboard JSON files live")
	check := flag.Bool("check", false, "compare instead of writing; fail on any difference")
	flag.Parse()
	for _, d := range dashboards() {
		b, err := render(d)
		if err != nil {
			return err
		}
		path := filepath.Join(*dir, d.file)
		if *check {
			old, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if !bytes.Equal(old, b) {
				return fmt.Errorf("%s is not what dashboards/gen writes: run go run ./dashboards/gen", path)
			}
			continue
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// render is the file content of one dashboard.
func render(d fileDashboard) ([]byte, error) {
	b, err := json.MarshalIndent(d.model(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.file, err)
	}
	return append(b, '\n'), nil
}

type fileDashboard struct {
	file string
	dashboard
}

func dashboards() []fileDashboard {
	return []fileDashboard{
		{"overview.json", overview()},
		{"kafka.json", kafkaDash()},
		{"saga.json", sagaDash()},
		{"notifications.json", notificationsDash()},
		{"chaos.json", chaosDash()},
	}
}

// PromQL helpers.

func rate(sel string) string { return "rate(" + sel + "[$__rate_interval])" }

func sumRate(by, sel string) string {
	if by == "" {
		return "sum(" + rate(sel) + ")"
	}
	return "sum by (" + by + ") (" + rate(sel) + ")"
}

// quantile of a classic histogram (bucket selector) or a native one.
func quantile(q float64, by, sel string) string {
	b := "le"
	if by != "" {
		b = "le, " + by
	}
	return fmt.Sprintf("histogram_quantile(%g, sum by (%s) (%s))", q, b, rate(sel))
}

// nativeQuantile is a quantile of a native histogram (k6 trends).
func nativeQuantile(q float64, by, sel string) string {
	if by == "" {
		return fmt.Sprintf("histogram_quantile(%g, sum(%s))", q, rate(sel))
	}
	return fmt.Sprintf("histogram_quantile(%g, sum by (%s) (%s))", q, by, rate(sel))
}

// orZero draws 0 when a counter of rare events (DLQ, errors) has no series
// yet: a healthy run shows a flat zero, not "No data".
func orZero(expr string) string { return "(" + expr + ") or on() vector(0)" }

func jobVars(metricRe string) []obj {
	return []obj{
		queryVar("job", "Job", `label_values({__name__=~"`+metricRe+`"}, job)`),
		queryVar("instance", "Instance", `label_values({__name__=~"`+metricRe+`", job=~"$job"}, instance)`),
	}
}

const placeRoute = `route="POST /v1/orders"`

func overview() dashboard {
	httpReq := m("stampede_http_requests_total")
	return dashboard{
		uid: "stampede-overview", title: "Stampede / Overview",
		desc:         "Orders in, saga outcomes out, accept latency, sagas in flight, every service's HTTP traffic and the outbox.",
		vars:         jobVars("stampede_.*"),
		faultWindows: true,
		rows: []row{
			{"Orders", []*panel{
				ts("Orders per second", "reqps", "Orders accepted by the Orders API (202) and placed by k6.",
					t(sumRate("", m("stampede_http_requests_total", placeRoute, `code=~"2.."`)), "accepted (Orders API)"),
					t(sumRate("", "k6_orders_placed_total"), "placed (k6)"),
				).size(8, 8),
				ts("Order outcomes per second", "ops", "Sagas finished, by outcome and reason.",
					t(sumRate("outcome, reason", m("stampede_saga_outcomes_total")), "{{outcome}} {{reason}}"),
				).stacked().size(8, 8),
				ts("Sagas in flight", "short", "Workflows the orchestrators started minus sagas finished, over the dashboard's time range (increase() survives process restarts).",
					t(`sum(increase(`+m("stampede_orchestrator_workflows_started_total", `result="started"`)+`[$__range])) - sum(increase(`+m("stampede_saga_outcomes_total")+`[$__range]))`, "in flight"),
				).size(8, 8),
				ts("Accept latency (POST /v1/orders)", "s", "Server side (the Orders API's histogram) and client side (k6, native histogram).",
					t(quantile(0.5, "", m("stampede_http_request_duration_seconds_bucket", placeRoute)), "p50 server"),
					te(quantile(0.99, "", m("stampede_http_request_duration_seconds_bucket", placeRoute)), "p99 server"),
					t(nativeQuantile(0.99, "", "k6_order_accept_duration_seconds"), "p99 k6"),
				),
				ts("k6: virtual users and dropped iterations", "short", "Dropped iterations mean the arrival rate was not delivered.",
					t(`sum(k6_vus)`, "VUs"),
					t(orZero(sumRate("", "k6_dropped_iterations_total")), "dropped/s"),
				),
			}},
			{"Services", []*panel{
				ts("HTTP requests per second by service and route", "reqps", "",
					t(sumRate("service, route", httpReq), "{{service}} {{route}}"),
				),
				ts("HTTP server errors per second (5xx)", "reqps", "",
					t(orZero(sumRate("service, route", m("stampede_http_requests_total", `code=~"5.."`))), "{{service}} {{route}}"),
				),
				ts("HTTP p99 latency by service", "s", "",
					t(quantile(0.99, "service", m("stampede_http_request_duration_seconds_bucket")), "{{service}}"),
				),
				ts("Orchestrator: workflow starts and signals", "ops", "",
					t(sumRate("result", m("stampede_orchestrator_workflows_started_total")), "start {{result}}"),
					t(orZero(sumRate("result", m("stampede_orchestrator_signals_total"))), "signal {{result}}"),
				),
				ts("Payments: charges by outcome, refunds", "ops", "",
					t(sumRate("outcome", m("stampede_payments_charges_total")), "{{outcome}}"),
					t(orZero(sumRate("", m("stampede_payments_refunds_total"))), "refunded"),
				).stacked().size(6, 8),
				ts("Inventory: reservations and releases", "ops", "",
					t(sumRate("outcome", m("stampede_inventory_reservations_total")), "reserve {{outcome}}"),
					t(orZero(sumRate("", m("stampede_inventory_releases_total"))), "released"),
				).stacked().size(6, 8),
				ts("Shipping: shipments by outcome", "ops", "",
					t(sumRate("outcome", m("stampede_shipping_creates_total")), "create {{outcome}}"),
					t(orZero(sumRate("status", m("stampede_shipping_transitions_total"))), "{{status}}"),
				).stacked().size(6, 8),
				ts("HTTP requests in flight by service", "short", "",
					t(`sum by (service) (`+m("stampede_http_requests_in_flight")+`)`, "{{service}}"),
				).size(6, 8),
				ts("Orchestrator: start duration", "s", "",
					t(quantile(0.99, "", m("stampede_orchestrator_start_duration_seconds_bucket")), "p99"),
					t(quantile(0.5, "", m("stampede_orchestrator_start_duration_seconds_bucket")), "p50"),
				),
			}},
			{"Outbox", []*panel{
				ts("Outbox: unsent rows", "short", "Committed rows the relay has not published yet.",
					t(`max by (outbox) (`+m("stampede_outbox_unsent_rows")+`)`, "{{outbox}}"),
				).size(8, 8),
				ts("Outbox: age of the oldest unsent row", "s", "",
					t(`max by (outbox) (`+m("stampede_outbox_oldest_unsent_age_seconds")+`)`, "{{outbox}}"),
				).size(8, 8),
				ts("Outbox: insert to Kafka commit (p99)", "s", "",
					t(quantile(0.99, "outbox", m("stampede_outbox_delay_seconds_bucket")), "{{outbox}}"),
				).size(8, 8),
			}},
		},
	}
}

func kafkaDash() dashboard {
	vars := append(jobVars("stampede_kafka_.*"),
		queryVar("group", "Consumer group", `label_values(stampede_kafka_records_consumed_total, group)`),
		queryVar("topic", "Topic", `label_values({__name__=~"stampede_kafka_records_(produced|consumed)_total"}, topic)`),
	)
	grp := []string{`group=~"$group"`, `topic=~"$topic"`}
	top := `topic=~"$topic"`
	return dashboard{
		uid: "stampede-kafka", title: "Stampede / Kafka",
		desc: "Produce and consume rates, consumer lag in time and in offsets per partition, DLQ, rebalances, and the outbox relay.",
		vars: vars, faultWindows: true,
		rows: []row{
			{"Throughput", []*panel{
				ts("Records produced per second by topic", "ops", "",
					t(sumRate("topic", m("stampede_kafka_records_produced_total", top)), "{{topic}}"),
				).size(8, 8),
				ts("Records consumed per second by group and topic", "ops", "",
					t(sumRate("group, topic", m("stampede_kafka_records_consumed_total", grp...)), "{{group}} {{topic}}"),
				).size(8, 8),
				ts("Produce latency (p99) by topic", "s", "Buffered to acknowledged.",
					t(quantile(0.99, "topic", m("stampede_kafka_produce_latency_seconds_bucket", top)), "{{topic}}"),
				).size(8, 8),
			}},
			{"Consumer lag", []*panel{
				ts("Consumer lag in time (p99) per partition", "s", "Processing time minus record timestamp; the dashed line is the 100 ms target.",
					t(quantile(0.99, "group, topic, partition", m("stampede_kafka_consumer_lag_seconds_bucket", grp...)), "{{group}} {{topic}}/{{partition}}"),
				).line(0.1),
				ts("Consumer lag in time (p50 and p99) per group", "s", "",
					t(quantile(0.5, "group, topic", m("stampede_kafka_consumer_lag_seconds_bucket", grp...)), "p50 {{group}} {{topic}}"),
					t(quantile(0.99, "group, topic", m("stampede_kafka_consumer_lag_seconds_bucket", grp...)), "p99 {{group}} {{topic}}"),
				).line(0.1),
				ts("Consumer lag in offsets per partition", "short", "High watermark minus the next offset, at the last processed record.",
					t(`max by (group, topic, partition) (`+m("stampede_kafka_consumer_lag_offsets", grp...)+`)`, "{{group}} {{topic}}/{{partition}}"),
				),
				ts("Orchestrator partitions: assigned and paused", "short", "Paused: retrying a transient failure (Temporal down) or a full queue.",
					t(`sum by (instance) (`+m("stampede_orchestrator_assigned_partitions")+`)`, "assigned {{instance}}"),
					t(`sum(`+m("stampede_orchestrator_paused_partitions")+`)`, "paused (all members)"),
				),
				ts("Rebalances", "short", "Assignments and revocations per group.",
					t(`sum by (group, kind) (increase(`+m("stampede_kafka_rebalances_total", `group=~"$group"`)+`[$__rate_interval]))`, "{{group}} {{kind}}"),
				).kind("timeseries"),
			}},
			{"Errors", []*panel{
				ts("Dead-lettered records per second", "ops", "",
					t(orZero(sumRate("topic, reason", m("stampede_kafka_dlq_records_total", top))), "{{topic}} {{reason}}"),
				),
				ts("Produce errors per second", "ops", "",
					t(orZero(sumRate("topic", m("stampede_kafka_produce_errors_total", top))), "{{topic}}"),
				),
			}},
			{"Outbox relay", []*panel{
				ts("Rows published per second by outbox", "ops", "",
					t(sumRate("outbox", m("stampede_outbox_published_total")), "{{outbox}}"),
				).size(6, 8),
				ts("Publish transaction duration (p99)", "s", "",
					t(quantile(0.99, "outbox", m("stampede_outbox_publish_duration_seconds_bucket")), "{{outbox}}"),
				).size(6, 8),
				ts("Unsent rows and oldest age", "short", "",
					t(`max by (outbox) (`+m("stampede_outbox_unsent_rows")+`)`, "unsent {{outbox}}"),
					t(`max by (outbox) (`+m("stampede_outbox_oldest_unsent_age_seconds")+`)`, "oldest age (s) {{outbox}}"),
				).size(6, 8),
				ts("Relay errors per second", "ops", "",
					t(orZero(sumRate("outbox", m("stampede_outbox_relay_errors_total"))), "{{outbox}}"),
				).size(6, 8),
			}},
		},
	}
}

func sagaDash() dashboard {
	vars := append(jobVars("stampede_saga_.*|temporal_.*"),
		queryVar("step", "Step", `label_values(stampede_saga_step_duration_seconds_count, step)`),
		customVar("task_queue", "Task queue", "order_processing"),
	)
	tq := `task_queue=~"$task_queue"`
	step := `step=~"$step"`
	return dashboard{
		uid: "stampede-saga", title: "Stampede / Saga",
		desc: "The order saga: outcomes by reason, step latencies, retries, compensations against the 30 s limit, and the Temporal SDK's own metrics.",
		vars: vars, faultWindows: true,
		rows: []row{
			{"Outcomes", []*panel{
				ts("Outcomes per second by reason", "ops", "",
					t(sumRate("outcome, reason", m("stampede_saga_outcomes_total")), "{{outcome}} {{reason}}"),
				).stacked(),
				ts("Workflows completed and failed (SDK)", "ops", "",
					t(sumRate("workflow_type", m("temporal_workflow_completed_total")), "completed {{workflow_type}}"),
					t(orZero(sumRate("workflow_type", m("temporal_workflow_failed_total"))), "failed {{workflow_type}}"),
				),
				ts("Workflow end-to-end latency (SDK)", "s", "Start to close of the order workflows, the wait for delivery included.",
					t(quantile(0.5, "workflow_type", m("temporal_workflow_endtoend_latency_seconds_bucket")), "p50 {{workflow_type}}"),
					t(quantile(0.99, "workflow_type", m("temporal_workflow_endtoend_latency_seconds_bucket")), "p99 {{workflow_type}}"),
				),
			}},
			{"Steps", []*panel{
				ts("Step latency (p99) by step", "s", "",
					t(quantile(0.99, "step", m("stampede_saga_step_duration_seconds_bucket", step)), "{{step}}"),
				),
				ts("Step latency (p50) by step and outcome", "s", "",
					t(quantile(0.5, "step, outcome", m("stampede_saga_step_duration_seconds_bucket", step)), "{{step}} {{outcome}}"),
				),
				ts("Step retries per second", "ops", "",
					t(orZero(sumRate("step", m("stampede_saga_step_retries_total", step))), "{{step}}"),
				),
				ts("Local activity execution latency (p99, SDK)", "s", "The saga's steps run as local activities.",
					t(quantile(0.99, "activity_type", m("temporal_local_activity_execution_latency_seconds_bucket")), "{{activity_type}}"),
				),
				ts("Workflow task schedule-to-start latency (p99, SDK)", "s", "Time a workflow task waited for a worker: the first sign of saturated workers.",
					t(quantile(0.99, "", m("temporal_workflow_task_schedule_to_start_latency_seconds_bucket")), "p99"),
					t(quantile(0.5, "", m("temporal_workflow_task_schedule_to_start_latency_seconds_bucket")), "p50"),
				),
				ts("Worker task slots available (SDK)", "short", "",
					t(`sum by (worker_type) (`+m("temporal_worker_task_slots_available", tq)+`)`, "{{worker_type}}"),
				),
			}},
			{"Temporal client (workers and orchestrators)", []*panel{
				ts("Temporal requests per second by operation", "reqps", "gRPC calls of the SDK clients in our processes (the server's own internal workers are not counted).",
					t(sumRate("job, operation", m("temporal_request_total")), "{{job}} {{operation}}"),
					t(orZero(sumRate("job, operation", m("temporal_request_failure_total"))), "failed {{job}} {{operation}}"),
				),
				ts("Temporal request latency (p99) by operation", "s", "",
					t(quantile(0.99, "job, operation", m("temporal_request_latency_seconds_bucket")), "{{job}} {{operation}}"),
				),
			}},
			{"Compensations", []*panel{
				ts("Compensations per second", "ops", "",
					t(orZero(sumRate("compensation, outcome", m("stampede_saga_compensations_total"))), "{{compensation}} {{outcome}}"),
				).size(8, 8),
				ts("Compensation time vs the 30 s limit", "s", "From the failure decision to the last compensation completed; the dashed line is the 30 s gate.",
					t(quantile(0.99, "", m("stampede_saga_compensation_duration_seconds_bucket")), "p99"),
					t(quantile(1, "", m("stampede_saga_compensation_duration_seconds_bucket")), "max (bucket bound)"),
				).line(30).size(8, 8),
				ts("Stuck compensations", "short", "Compensations failing for longer than 30 s.",
					t(orZero(`sum(`+m("stampede_saga_compensations_stuck_total")+`)`), "stuck (total)"),
				).size(8, 8),
			}},
		},
	}
}

func notificationsDash() dashboard {
	vars := append(jobVars("stampede_notification_.*|stampede_analytics_.*"),
		queryVar("channel", "Channel", `label_values(stampede_notification_sends_total, channel)`),
	)
	ch := `channel=~"$channel"`
	return dashboard{
		uid: "stampede-notifications", title: "Stampede / Notifications",
		desc: "The notification queue (asynq), deliveries by channel, the send rate against its 50/s limit, and analytics matches.",
		vars: vars, faultWindows: true,
		rows: []row{
			{"Queue", []*panel{
				ts("Queue depth by state", "short", "asynq tasks: pending, active, scheduled, retry, archived.",
					t(`max by (state) (`+m("stampede_notification_queue_tasks")+`)`, "{{state}}"),
				).stacked(),
				ts("Enqueue to delivery", "s", "",
					t(quantile(0.5, "", m("stampede_notification_enqueue_to_delivery_seconds_bucket")), "p50"),
					t(quantile(0.99, "", m("stampede_notification_enqueue_to_delivery_seconds_bucket")), "p99"),
				),
			}},
			{"Delivery", []*panel{
				ts("Send rate vs limit", "ops", "All send attempts per second against the configured limit (50/s; dashed line).",
					t(sumRate("", m("stampede_notification_sends_total", ch)), "sends/s"),
					t(`max(`+m("stampede_notification_rate_limit_per_second")+`)`, "limit"),
					t(orZero(sumRate("", m("stampede_notification_rate_limited_total"))), "rate-limited/s"),
				).line(50),
				ts("Deliveries per second by channel and outcome", "ops", "",
					t(sumRate("channel, outcome", m("stampede_notification_sends_total", ch)), "{{channel}} {{outcome}}"),
				).stacked(),
				ts("Sends by template", "ops", "",
					t(sumRate("template", m("stampede_notification_sends_total", ch)), "{{template}}"),
				),
				ts("Send duration (p99) by channel", "s", "",
					t(quantile(0.99, "channel", m("stampede_notification_send_duration_seconds_bucket", ch)), "{{channel}}"),
				),
			}},
			{"Analytics", []*panel{
				ts("Events per second by topic", "ops", "",
					t(sumRate("topic", m("stampede_analytics_events_total")), "{{topic}}"),
				).size(8, 8),
				ts("Matches per second by rule and target", "ops", "",
					t(sumRate("rule, target", m("stampede_analytics_matches_total")), "{{rule}} -> {{target}}"),
				).size(8, 8),
				ts("Target deliveries by outcome", "ops", "",
					t(sumRate("target, outcome", m("stampede_analytics_target_deliveries_total")), "{{target}} {{outcome}}"),
				).size(8, 8),
				ts("Target acknowledgement time (p99)", "s", "",
					t(quantile(0.99, "target", m("stampede_analytics_target_duration_seconds_bucket")), "{{target}}"),
				),
			}},
		},
	}
}

func chaosDash() dashboard {
	vars := append(jobVars("stampede_.*"),
		queryVar("run", "Chaos run", `label_values(stampede_chaos_fault_active, run)`),
	)
	pass := []obj{
		{"type": "value", "options": obj{
			"0": obj{"text": "FAIL", "color": "red", "index": 0},
			"1": obj{"text": "PASS", "color": "green", "index": 1},
		}},
	}
	active := []obj{
		{"type": "value", "options": obj{
			"0": obj{"text": "off", "color": "transparent", "index": 0},
			"1": obj{"text": "ACTIVE", "color": "red", "index": 1},
		}},
	}
	return dashboard{
		uid: "stampede-chaos", title: "Stampede / Chaos run",
		desc: "Load, latency, lag and errors of a chaos run with its fault windows shaded (red), and the gates the verifier evaluated.",
		vars: vars, faultWindows: true,
		rows: []row{
			{"Faults and gates", []*panel{
				ts("Fault windows", "none", "1 while a fault is injected.",
					t(`max by (fault) (stampede_chaos_fault_active{run=~"$run"})`, "{{fault}}"),
				).kind("state-timeline").withMappings(active...).size(16, 6),
				ts("Gates", "none", "1 = pass, 0 = fail, as evaluated by the verifier at the end of the run.",
					t(`min by (gate) (stampede_chaos_gate_pass{run=~"$run"})`, "{{gate}}"),
				).kind("stat").withMappings(pass...).size(8, 6),
			}},
			{"Load and latency", []*panel{
				ts("Orders per second (k6) by fault window", "ops", "k6 tags each placement with fault=yes|no.",
					t(sumRate("fault", "k6_orders_placed_total"), "placed (fault={{fault}})"),
					t(orZero(sumRate("", "k6_orders_rejected_total")), "rejected"),
					t(orZero(sumRate("", "k6_orders_unknown_total")), "unknown outcome"),
				).faults(),
				ts("Accept latency p99 (k6 and server)", "s", "",
					t(nativeQuantile(0.99, "", "k6_order_accept_duration_seconds"), "p99 k6"),
					t(quantile(0.99, "", m("stampede_http_request_duration_seconds_bucket", placeRoute)), "p99 server"),
				).faults(),
				ts("Order confirm latency p99 (k6)", "s", "Placement to a terminal status, as k6 polled it.",
					t(nativeQuantile(0.99, "", "k6_order_confirm_duration_seconds"), "p99"),
				).faults(),
				ts("k6 requests and failures per second", "reqps", "",
					t(sumRate("", "k6_http_reqs_total"), "requests"),
					t(orZero(sumRate("", `k6_http_reqs_total{expected_response="false"}`)), "failed"),
				).faults(),
			}},
			{"Lag and errors", []*panel{
				ts("Consumer lag in time (p99) by group", "s", "The dashed line is the 100 ms target.",
					t(quantile(0.99, "group", m("stampede_kafka_consumer_lag_seconds_bucket")), "{{group}}"),
				).line(0.1).faults(),
				ts("Consumer lag in offsets by group", "short", "",
					t(`sum by (group) (`+m("stampede_kafka_consumer_lag_offsets")+`)`, "{{group}}"),
				).faults(),
				ts("HTTP 5xx per second by service", "reqps", "",
					t(orZero(sumRate("service", m("stampede_http_requests_total", `code=~"5.."`))), "{{service}}"),
				).faults(),
				ts("Saga outcomes per second", "ops", "",
					t(sumRate("outcome, reason", m("stampede_saga_outcomes_total")), "{{outcome}} {{reason}}"),
				).faults(),
				ts("Compensation time vs 30 s", "s", "",
					t(quantile(0.99, "", m("stampede_saga_compensation_duration_seconds_bucket")), "p99"),
				).line(30).faults(),
				ts("Outbox backlog", "short", "",
					t(`sum(`+m("stampede_outbox_unsent_rows")+`)`, "unsent rows"),
				).faults(),
			}},
		},
	}
}

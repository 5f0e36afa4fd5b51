package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/stampede-dev/stampede/platform/analytics"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/telemetry"
	"github.com/stampede-dev/stampede/platform/web"
)

func serveAnalytics(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve analytics", `The analytics router: consumes the analytics topic (and any topic its rules file
lists) in group analytics-router, matches every event envelope against EventBridge-style
event patterns, and delivers matches to the rules' targets (Kafka topic, webhook, JSONL
file, AWS EventBridge). Offsets are committed once every target acknowledged;
undecodable records go to analytics.dlq. GET /v1/rules lists the loaded rules.`)
	var (
		port       int
		brokers    string
		rulesPath  string
		dataDir    string
		group      string
		ebOn       bool
		ebEndpoint string
		ebRegion   string
		hosts      string
		lim        web.Limits
		linger     time.Duration
	)
	portFlag(fs, &port, config.Analytics, "HTTP port on 127.0.0.1")
	allowedHostsFlag(fs, &hosts)
	limitsFlags(fs, &lim)
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers")
	fs.StringVar(&rulesPath, "rules", "STAMPEDE_ANALYTICS_RULES", "", "rules YAML file (default: the built-in rules, platform/analytics/rules/default.yaml)")
	fs.StringVar(&dataDir, "data-dir", "STAMPEDE_ANALYTICS_DATA_DIR", filepath.Join(config.Env("STAMPEDE_HOME", ".stampede"), "data", "analytics"), "directory of file targets with relative paths")
	fs.StringVar(&group, "group", "STAMPEDE_ANALYTICS_GROUP", analytics.Group, "Kafka consumer group")
	fs.BoolVar(&ebOn, "eventbridge", "STAMPEDE_ANALYTICS_EVENTBRIDGE", false, "allow AWS EventBridge targets (credentials from the AWS default chain)")
	fs.StringVar(&ebEndpoint, "eventbridge-endpoint", "STAMPEDE_ANALYTICS_EVENTBRIDGE_ENDPOINT", "", "EventBridge endpoint URL (default AWS's; a target's own endpoint wins)")
	fs.StringVar(&ebRegion, "eventbridge-region", "STAMPEDE_ANALYTICS_EVENTBRIDGE_REGION", "us-east-1", "EventBridge region (a target's own region wins)")
	fs.DurationVar(&linger, "linger", "STAMPEDE_ANALYTICS_LINGER", analytics.DefaultLinger,
		"after a small poll the router waits this long, so the events arriving meanwhile are routed, delivered and committed together (the most it delays a delivery)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if linger < 0 || linger > 5*time.Second {
		return fmt.Errorf("--linger %s: want 0..5s", linger)
	}
	if err := lim.Validate(); err != nil {
		return fmt.Errorf("--%w", err)
	}
	log := telemetry.NewLogger("analytics", nil)
	reg := telemetry.NewRegistry()

	src := analytics.DefaultRules
	if rulesPath != "" {
		b, err := os.ReadFile(rulesPath)
		if err != nil {
			return fmt.Errorf("read rules: %w", err)
		}
		src = b
	}
	rules, err := analytics.ParseRules(src, analytics.LoadOptions{EventBridge: ebOn})
	if err != nil {
		if rulesPath != "" {
			return fmt.Errorf("%s: %w", rulesPath, err)
		}
		return err
	}

	km := kafka.NewMetrics(reg)
	seeds := splitComma(brokers)
	cl, err := kgo.NewClient(append(kafka.BaseOpts("analytics-router", seeds),
		append(analytics.ConsumerOpts(group, rules.ConsumedTopics()), kgo.WithHooks(km))...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	// The stack creates analytics.dlq and the default rules' topics; creating
	// what is missing here keeps a custom rules file working on its own.
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = kafka.EnsureTopics(ectx, cl, append(rules.KafkaTopics(), kafka.TopicSpec{Name: event.TopicAnalyticsDLQ, Partitions: 1}), 1)
	cancel()
	if err != nil {
		log.Warn("could not create target topics; producing to them will fail until they exist", "err", err)
	}

	opts := analytics.BuildOptions{Client: cl, DataDir: dataDir}
	if ebOn {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(ebRegion))
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		opts.EventBridge = func(s analytics.EventBridgeSpec) analytics.PutEventsAPI {
			endpoint := ebEndpoint
			if s.Endpoint != "" {
				endpoint = s.Endpoint
			}
			return analytics.NewEventBridgeClient(awsCfg, s.Region, endpoint)
		}
	}
	targets, err := analytics.BuildTargets(rules, opts)
	if err != nil {
		return err
	}
	defer analytics.CloseTargets(targets)

	svc := &analytics.Service{Rules: rules, Ready: func(ctx context.Context) error { return kafka.Ping(ctx, seeds) }}
	mux := svc.Router()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(reg))
	guard, err := newGuard(config.Analytics, port, hosts, nil, false)
	if err != nil {
		return err
	}
	hm := web.NewMetrics(reg, "analytics")
	handler := web.Middleware(web.Limit(guard.Wrap(mux), lim, hm), log, hm)

	router := &analytics.Router{Client: cl, Group: group, Rules: rules, Targets: targets, Log: log,
		Metrics: analytics.NewMetrics(reg), Kafka: km, Linger: linger}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return router.Run(gctx) })
	g.Go(func() error {
		log.Info("analytics router listening", "addr", config.ListenAddr(port),
			"topics", rules.ConsumedTopics(), "rules", len(rules.Rules), "data_dir", dataDir)
		return web.Serve(gctx, config.ListenAddr(port), handler, 10*time.Second)
	})
	return g.Wait()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	// clusterName and clusterID are fixed: they are stored in the cluster
	// metadata on first start and must match on every later start.
	clusterName = "active"
	clusterID   = "5b4f1f6e-7c55-4a53-9f0b-1d5a2f3c7e11"
)

// portsFree fails with the name of the first port something else listens on.
// The UI server exits the whole process when it cannot bind, and the server
// reports a bind error deep inside its start-up, so check first.
func portsFree(o options) error {
	ports := []struct {
		name string
		port int
	}{
		{"frontend gRPC port (--port)", o.Port},
		{"Web UI port (--ui-port)", o.UIPort},
		{"metrics port (--metrics-port)", o.MetricsPort},
		{"pprof port (--pprof-port)", o.PProfPort},
	}
	for _, p := range ports {
		if p.port == 0 {
			continue
		}
		addr := net.JoinHostPort(o.bindIP(), strconv.Itoa(p.port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s %d is in use on %s (%w): stop what listens there or pick another port", p.name, p.port, o.bindIP(), err)
		}
		_ = l.Close()
	}
	return nil
}

// freePort asks the kernel for an unused loopback port, for the services
// that only talk to each other (history, matching, worker, frontend HTTP).
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverConfig is the static configuration of a single-node cluster whose
// services all bind o.IP.
func serverConfig(o options, st store) (*config.Config, error) {
	frontend := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	httpPort, err := freePort(o.IP)
	if err != nil {
		return nil, err
	}
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.IP
	if o.MetricsPort > 0 {
		conf.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
			ListenAddress: net.JoinHostPort(o.bindIP(), strconv.Itoa(o.MetricsPort)),
			HandlerPath:   "/metrics",
		}}
	}
	conf.Global.PProf.Port = o.PProfPort
	conf.Global.PProf.Host = o.IP
	conf.Persistence.NumHistoryShards = int32(o.HistoryShards)
	conf.Persistence.DefaultStore = "main"
	conf.Persistence.VisibilityStore = "visibility"
	mainSQL, visSQL := st.main, st.visibility
	conf.Persistence.DataStores = map[string]config.DataStore{
		"main":       {SQL: &mainSQL},
		"visibility": {SQL: &visSQL},
	}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(o.IP, strconv.Itoa(httpPort)),
				ClusterID:              clusterID,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, svc := range []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		var s config.Service
		s.RPC.BindOnIP = o.IP
		if svc == primitives.FrontendService {
			// Clients reach the frontend from outside a container; the
			// other services, and membership, still use o.IP.
			s.RPC.BindOnIP = o.bindIP()
			s.RPC.GRPCPort = o.Port
			s.RPC.HTTPPort = httpPort
		} else if s.RPC.GRPCPort, err = freePort(o.IP); err != nil {
			return nil, err
		}
		conf.Services[string(svc)] = s
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf, nil
}

// newServer builds the Temporal server; readiness gates its health check.
func newServer(o options, conf *config.Config, logger log.Logger, gate *readiness) (temporal.Server, error) {
	dyn, err := buildDynamicConfig(o.Persistence, o.SQLiteConns, o.DynamicConfig)
	if err != nil {
		return nil, err
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
	}
	return temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dyn),
		temporal.WithChainedFrontendGrpcInterceptors(gate.intercept),
	)
}

// newUI builds the Web UI server that talks to the frontend.
func newUI(o options) *uiserver.Server {
	return uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                o.bindIP(),
		Port:                o.UIPort,
		TemporalGRPCAddress: net.JoinHostPort(o.IP, strconv.Itoa(o.Port)),
		EnableUI:            true,
		DefaultNamespace:    o.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true, // no internet here
	}))
}

// readiness holds the frontend's grpc.health.v1 Check at NOT_SERVING until
// start-up work (the namespace's search attributes) is done, so a launcher
// that waits for SERVING can start workflows with OrderId right away.
type readiness struct {
	ready atomic.Bool
}

func (r *readiness) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod == healthpb.Health_Check_FullMethodName && !r.ready.Load() {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return handler(ctx, req)
}

// ensureSearchAttributes adds any of searchAttributes the namespace lacks
// (a namespace created by an older start, or by someone else) and waits until
// the frontend reports them. It retries while the frontend is still starting.
func ensureSearchAttributes(ctx context.Context, addr, namespace string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial frontend: %w", err)
	}
	defer conn.Close()
	op := operatorservice.NewOperatorServiceClient(conn)

	list := func() (*operatorservice.ListSearchAttributesResponse, error) {
		var lastErr error
		for {
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := op.ListSearchAttributes(callCtx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
			cancel()
			if err == nil {
				return resp, nil
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("list search attributes: %w", errors.Join(ctx.Err(), lastErr))
			case <-time.After(250 * time.Millisecond):
			}
		}
	}

	resp, err := list()
	if err != nil {
		return err
	}
	missing := missingSearchAttributes(resp.GetCustomAttributes())
	for name, want := range searchAttributes {
		if got, ok := resp.GetCustomAttributes()[name]; ok && got != want {
			return fmt.Errorf("search attribute %s exists as %s, want %s", name, got, want)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	for {
		resp, err := list()
		if err != nil {
			return err
		}
		if len(missingSearchAttributes(resp.GetCustomAttributes())) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for search attributes: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	// The frontend validates start requests against its namespace cache,
	// which refreshes every 2 s (system.namespaceCacheRefreshInterval).
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second):
	}
	return nil
}

// missingSearchAttributes is the part of searchAttributes that have lacks.
func missingSearchAttributes(have map[string]enumspb.IndexedValueType) map[string]enumspb.IndexedValueType {
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range searchAttributes {
		if _, ok := have[name]; !ok {
			missing[name] = typ
		}
	}
	return missing
}

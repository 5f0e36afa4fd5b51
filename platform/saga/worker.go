package saga

import (
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register registers the order workflow and its activities (all run as local
// activities, called by method name) on a worker.
func Register(r worker.Registry, wf *Workflow, a *Activities) {
	RegisterWorkflow(r, wf)
	if a != nil {
		r.RegisterActivityWithOptions(a, activity.RegisterOptions{})
	}
}

// WorkflowRegistry is where a workflow is registered: a worker or a replayer.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflow registers the order workflow alone, e.g. on a
// worker.WorkflowReplayer for determinism checks.
func RegisterWorkflow(r WorkflowRegistry, wf *Workflow) {
	r.RegisterWorkflowWithOptions(wf.Run, workflow.RegisterOptions{Name: WorkflowType})
}

// NewWorker returns a worker of the order task queue running wf and a.
func NewWorker(c client.Client, wf *Workflow, a *Activities, opts worker.Options) worker.Worker {
	w := worker.New(c, TaskQueue, opts)
	Register(w, wf, a)
	return w
}

// SDKMetricsHandler reports the Temporal SDK's own metrics (temporal_*:
// workflow task latency, local activity execution, sticky cache, ...) into
// reg, so they are served by the same /metrics. Close flushes and stops it.
func SDKMetricsHandler(reg *prometheus.Registry, onError func(error)) (client.MetricsHandler, io.Closer, error) {
	reporter, err := tallyprom.Configuration{TimerType: "histogram"}.NewReporter(tallyprom.ConfigurationOptions{
		Registry: reg,
		OnError:  onError,
	})
	if err != nil {
		return nil, nil, err
	}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer, nil
}

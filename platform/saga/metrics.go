package saga

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the saga's own series. They are recorded by activities (never
// by workflow code, which replays).
type Metrics struct {
	Outcomes             *prometheus.CounterVec   // {outcome, reason}
	StepDuration         *prometheus.HistogramVec // {step, outcome}
	StepRetries          *prometheus.CounterVec   // {step}
	Compensations        *prometheus.CounterVec   // {compensation, outcome}: one per attempt
	CompensationDuration prometheus.Histogram     // failure decision -> last compensation done
	Stuck                prometheus.Counter       // compensations that failed for longer than StuckAfter
	Paced                *prometheus.CounterVec   // {step}: retries the Pacer turned away
}

// NewMetrics registers the saga's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_saga_outcomes_total",
			Help: "Finished sagas by outcome (delivered, failed, cancelled) and reason code.",
		}, []string{"outcome", "reason"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stampede_saga_step_duration_seconds",
			Help:    "Time from a step's start to its end in workflow time, retries included, by step and outcome (ok, business, unavailable, cancelled).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200},
		}, []string{"step", "outcome"}),
		StepRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_saga_step_retries_total",
			Help: "Attempts of a step beyond its first (infrastructure failures being retried).",
		}, []string{"step"}),
		Compensations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_saga_compensations_total",
			Help: "Compensation attempts by compensation and outcome (ok, error).",
		}, []string{"compensation", "outcome"}),
		CompensationDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stampede_saga_compensation_duration_seconds",
			Help:    "Time from the failure decision to the last compensation completed.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 45, 60},
		}),
		Stuck: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stampede_saga_compensations_stuck_total",
			Help: "Compensations that kept failing for longer than 30s (each counted once).",
		}),
		Paced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_saga_paced_total",
			Help: "Retries of a forward step that the worker's pacer turned away (their turn was past the attempt's deadline); each comes back with the step's backoff.",
		}, []string{"step"}),
	}
	reg.MustRegister(m.Outcomes, m.StepDuration, m.StepRetries, m.Compensations, m.CompensationDuration, m.Stuck, m.Paced)
	return m
}

func (m *Metrics) observe(u StatusUpdate) {
	if s := u.Step; s != nil {
		m.StepDuration.WithLabelValues(s.Step, s.Outcome).Observe(s.Duration.Seconds())
	}
	if f := u.Final; f != nil {
		m.Outcomes.WithLabelValues(f.Outcome, f.ReasonCode).Inc()
		if f.CompensationDuration > 0 {
			m.CompensationDuration.Observe(f.CompensationDuration.Seconds())
		}
	}
}

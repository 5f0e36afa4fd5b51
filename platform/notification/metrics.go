package notification

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Notifications service's Prometheus series.
type Metrics struct {
	Sends          *prometheus.CounterVec   // channel, template, outcome
	SendDuration   *prometheus.HistogramVec // channel
	EnqueueToFirst prometheus.Histogram
	RateLimited    prometheus.Counter
	QueueTasks     *prometheus.GaugeVec // state
	RateLimit      prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stampede_notification_sends_total",
			Help: "Send attempts by channel, template and outcome (delivered, failed, skipped).",
		}, []string{"channel", "template", "outcome"}),
		SendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stampede_notification_send_duration_seconds",
			Help:    "Time a provider took to answer a send, by channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"channel"}),
		EnqueueToFirst: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stampede_notification_enqueue_to_delivery_seconds",
			Help:    "Time from the notification's enqueue (payload requestedAt) to its first channel delivered.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stampede_notification_rate_limited_total",
			Help: "Sends that waited for the global rate limit.",
		}),
		QueueTasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stampede_notification_queue_tasks",
			Help: "Tasks of the notifications queue by state (pending, active, scheduled, retry, archived, completed).",
		}, []string{"state"}),
		RateLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stampede_notification_rate_limit_per_second",
			Help: "The configured global rate limit of sends per second.",
		}),
	}
	// Every series exists from the start, so rates and ratios work before the first send.
	for _, ch := range Channels {
		m.SendDuration.WithLabelValues(string(ch))
		for _, t := range Templates {
			for _, o := range []string{OutcomeDelivered, OutcomeFailed, OutcomeSkipped} {
				m.Sends.WithLabelValues(string(ch), t, o)
			}
		}
	}
	if reg != nil {
		reg.MustRegister(m.Sends, m.SendDuration, m.EnqueueToFirst, m.RateLimited, m.QueueTasks, m.RateLimit)
	}
	return m
}

package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Counter is a registered Prometheus counter, with labels or without, that
// a nil *Counter ignores: a service whose metrics were not set still runs.
type Counter struct{ vec *prometheus.CounterVec }

// NewCounter registers the counter name on reg, by the labels given. One
// without labels is shown at 0 from the start, as a prometheus.Counter is;
// one with labels shows a series from its first Inc or Add.
func NewCounter(reg prometheus.Registerer, name, help string, labels ...string) *Counter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg.MustRegister(vec)
	if len(labels) == 0 {
		vec.WithLabelValues()
	}
	return &Counter{vec}
}

// Inc adds one to the series of labels (its values, in the order NewCounter named them).
func (c *Counter) Inc(labels ...string) { c.Add(1, labels...) }

// Add adds n to the series of labels.
func (c *Counter) Add(n int, labels ...string) {
	if c != nil {
		c.vec.WithLabelValues(labels...).Add(float64(n))
	}
}

package sip

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the call counters and the post-dial delay histogram. Labels
// are bounded: end reasons are Veil's own constants.
type Metrics struct {
	calls  *prometheus.CounterVec
	active prometheus.Gauge
	pdd    prometheus.Histogram
	// tcpRefused counts TCP connections closed at once because
	// sip.max_tcp_connections were open.
	tcpRefused prometheus.Counter
}

// NewMetrics builds the SIP metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_calls_total",
			Help: "Calls ended, by end reason.",
		}, []string{"reason"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "veil_calls_active",
			Help: "Calls in progress (ringing or answered).",
		}),
		pdd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "veil_call_post_dial_delay_seconds",
			Help:    "Post-dial delay: from the caller's INVITE to the callee side's first ringing or answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		tcpRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "veil_sip_tcp_connections_refused_total",
			Help: "SIP TCP connections closed at once because sip.max_tcp_connections were open.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.active, m.pdd, m.tcpRefused)
	}
	return m
}

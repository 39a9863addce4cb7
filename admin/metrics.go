package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/veilgw/veil/routing"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer, rt *routing.Service) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_admin_requests_total", Help: "Admin API requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "veil_admin_request_duration_seconds", Help: "Admin API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration, routingCollector{rt})
	return m
}

func (m *httpMetrics) observe(method, route string, code int, d time.Duration) {
	if code == 0 {
		code = 200
	}
	// Methods are client input: bound the label set.
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		method = "other"
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// routingCollector reads routing.Stats at scrape time.
type routingCollector struct{ rt *routing.Service }

var (
	descOpen      = prometheus.NewDesc("veil_sessions_open", "Open masking sessions.", nil, nil)
	descNumbers   = prometheus.NewDesc("veil_numbers", "Proxy numbers in the pool.", nil, nil)
	descRoutes    = prometheus.NewDesc("veil_routes", "Configured routes.", nil, nil)
	descCreated   = prometheus.NewDesc("veil_sessions_created_total", "Sessions created since start.", nil, nil)
	descClosed    = prometheus.NewDesc("veil_sessions_closed_total", "Sessions closed since start, by reason.", []string{"reason"}, nil)
	descExhausted = prometheus.NewDesc("veil_pool_exhausted_total", "Session creates refused because no proxy number was free.", nil, nil)
)

func (c routingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpen, descNumbers, descRoutes, descCreated, descClosed, descExhausted} {
		ch <- d
	}
}

func (c routingCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.rt.Stats()
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.OpenSessions))
	ch <- prometheus.MustNewConstMetric(descNumbers, prometheus.GaugeValue, float64(st.Numbers))
	ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(st.Routes))
	ch <- prometheus.MustNewConstMetric(descCreated, prometheus.CounterValue, float64(st.Created))
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(st.Closed), routing.CloseReasonAPI)
	ch <- prometheus.MustNewConstMetric(descClosed, prometheus.CounterValue, float64(st.Expired), routing.CloseReasonExpired)
	ch <- prometheus.MustNewConstMetric(descExhausted, prometheus.CounterValue, float64(st.PoolExhausted))
}

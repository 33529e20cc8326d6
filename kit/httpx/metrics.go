package httpx

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds a service's Prometheus registry and the HTTP request metrics
// that Observe records. Services register their own collectors on Registry.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// series caches the children of requests and latency by label values,
	// so a request costs a map read instead of two label hashes, two
	// locked lookups and a strconv. Copy-on-write: readers never lock.
	series   atomic.Pointer[map[seriesKey]seriesPair]
	seriesMu sync.Mutex // serialises writers of series
}

type seriesKey struct {
	route, method string
	status        int
}

type seriesPair struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// maxCachedSeries bounds the cache. Every label is from a closed set (route
// patterns, MethodLabel, the statuses the service writes), so this is a
// second line of defence, not the bound itself.
const maxCachedSeries = 256

// MethodLabel returns method when it is one of the methods of RFC 9110
// (plus PATCH), else "OTHER". Metric labels and log fields take it, never
// r.Method itself: a client must not be able to create a series per invented
// method (issue 12: 300 random methods made 300 series).
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// NewMetrics returns a registry with Go runtime and process collectors and
// request count and latency by route, method and status.
func NewMetrics(namespace string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "status"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	p := m.seriesFor(seriesKey{route, MethodLabel(method), status})
	p.count.Inc()
	p.latency.Observe(d.Seconds())
}

func (m *Metrics) seriesFor(k seriesKey) seriesPair {
	if cur := m.series.Load(); cur != nil {
		if p, ok := (*cur)[k]; ok {
			return p
		}
	}
	s := strconv.Itoa(k.status)
	p := seriesPair{
		count:   m.requests.WithLabelValues(k.route, k.method, s),
		latency: m.latency.WithLabelValues(k.route, s),
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	cur := m.series.Load()
	if cur != nil && len(*cur) >= maxCachedSeries {
		return p
	}
	next := make(map[seriesKey]seriesPair, 1)
	if cur != nil {
		next = make(map[seriesKey]seriesPair, len(*cur)+1)
		for key, v := range *cur {
			next[key] = v
		}
	}
	next[k] = p
	m.series.Store(&next)
	return p
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

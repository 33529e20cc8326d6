package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/proxy/internal/ratelimit"
)

// metrics are the proxy's own collectors, registered on the kit registry
// (which already counts requests by route class, method and status).
type metrics struct {
	*httpx.Metrics
	authFailures   *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	limiterBackend *prometheus.GaugeVec
	jwksFetches    *prometheus.CounterVec
	upstream       *prometheus.HistogramVec

	revokedSessions   prometheus.Gauge
	revocationReloads prometheus.Counter
	revocationUp      prometheus.Gauge

	sigCacheHits, sigCacheMisses prometheus.Counter

	routesReloadOK prometheus.Gauge
	routesReloads  *prometheus.CounterVec
	routes         prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		Metrics: httpx.NewMetrics("proxy"),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "proxy", Name: "auth_failures_total",
			Help: "Requests refused for their token, by reason (missing, expired, bad_signature, unknown_kid, ...).",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "proxy", Name: "rate_limit_rejections_total",
			Help: "Requests answered 429, by route class and limiter backend.",
		}, []string{"route", "backend"}),
		limiterBackend: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "proxy", Name: "rate_limit_backend",
			Help: "1 for the rate-limit store in use (redis, or memory while Redis is unreachable), else 0.",
		}, []string{"backend"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "proxy", Name: "jwks_fetches_total",
			Help: "JWKS fetches (start-up, background refresh, unknown kid), by result.",
		}, []string{"result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "proxy", Name: "upstream_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers, by upstream and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"upstream", "status"}),
	}
	m.revokedSessions = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "proxy", Name: "revoked_sessions",
		Help: "Sessions held in memory as revoked (their tokens are refused until they expire).",
	})
	m.revocationReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "proxy", Name: "revocation_reloads_total",
		Help: "Full reads of the revoked-session set from Redis (start-up, every resubscription, periodic resync).",
	})
	m.revocationUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "proxy", Name: "revocation_subscription_up",
		Help: "1 while subscribed to revocations and in step with Redis; 0 while Redis is unreachable (the last known set is kept).",
	})
	m.sigCacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "proxy", Name: "signature_cache_hits_total",
		Help: "Token verifications that skipped the signature check (same token seen before; claims, key and revocation still checked).",
	})
	m.sigCacheMisses = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "proxy", Name: "signature_cache_misses_total",
		Help: "Token verifications that checked the signature.",
	})
	m.routesReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "proxy", Name: "routes_last_reload_success",
		Help: "1 when the last load of PROXY_ROUTES_FILE succeeded, 0 when it was refused (the previous routes stay in use).",
	})
	m.routesReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "proxy", Name: "routes_reloads_total",
		Help: "Loads of PROXY_ROUTES_FILE (start-up, SIGHUP, content change), by result.",
	}, []string{"result"})
	m.routes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "proxy", Name: "routes",
		Help: "Routes in use from PROXY_ROUTES_FILE (0 without one: built-in routing).",
	})
	m.Registry.MustRegister(m.routesReloadOK, m.routesReloads, m.routes)
	m.Registry.MustRegister(m.sigCacheHits, m.sigCacheMisses)
	m.Registry.MustRegister(m.authFailures, m.rateLimited, m.limiterBackend, m.jwksFetches, m.upstream,
		m.revokedSessions, m.revocationReloads, m.revocationUp)
	for _, r := range []string{"success", "failure"} {
		m.jwksFetches.WithLabelValues(r)
	}
	return m
}

func (m *metrics) routesReload(ok bool) {
	if ok {
		m.routesReloadOK.Set(1)
		m.routesReloads.WithLabelValues("success").Inc()
		return
	}
	m.routesReloadOK.Set(0)
	m.routesReloads.WithLabelValues("failure").Inc()
}

func (m *metrics) setBackend(b ratelimit.Backend) {
	for _, x := range []ratelimit.Backend{ratelimit.BackendRedis, ratelimit.BackendMemory} {
		v := 0.0
		if x == b {
			v = 1
		}
		m.limiterBackend.WithLabelValues(string(x)).Set(v)
	}
}

func (m *metrics) jwksFetched(err error) {
	if err != nil {
		m.jwksFetches.WithLabelValues("failure").Inc()
		return
	}
	m.jwksFetches.WithLabelValues("success").Inc()
}

// upstreamSeries are one upstream's latency histograms by status, resolved
// once per status rather than by label lookup (and strconv) per request.
type upstreamSeries struct {
	vec      *prometheus.HistogramVec
	name     string
	byStatus [600]atomic.Pointer[prometheus.Observer] // index: HTTP status
	failed   prometheus.Observer                      // status "error": no response
}

func (m *metrics) upstreamSeries(name string) *upstreamSeries {
	return &upstreamSeries{vec: m.upstream, name: name, failed: m.upstream.WithLabelValues(name, "error")}
}

// observe records d for a response with status, or for a failed round trip
// when status is 0.
func (u *upstreamSeries) observe(status int, d time.Duration) {
	if status == 0 {
		u.failed.Observe(d.Seconds())
		return
	}
	if status < 0 || status >= len(u.byStatus) {
		u.vec.WithLabelValues(u.name, strconv.Itoa(status)).Observe(d.Seconds())
		return
	}
	p := u.byStatus[status].Load()
	if p == nil {
		o := u.vec.WithLabelValues(u.name, strconv.Itoa(status))
		p = &o
		u.byStatus[status].Store(p)
	}
	(*p).Observe(d.Seconds())
}

func (m *metrics) setRevocationUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.revocationUp.Set(v)
}

func (m *metrics) sigCacheLookup(hit bool) {
	if hit {
		m.sigCacheHits.Inc()
		return
	}
	m.sigCacheMisses.Inc()
}

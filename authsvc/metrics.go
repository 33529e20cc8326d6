package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse.dev/authsvc/internal/password"
)

// authMetrics are authsvc's own counters, next to httpx's request metrics.
type authMetrics struct {
	reg      *prometheus.Registry
	signUps  *prometheus.CounterVec
	signIns  *prometheus.CounterVec
	tokens   prometheus.Counter
	hashWork prometheus.Histogram
	hashWait prometheus.Histogram

	signUpCommon    prometheus.Counter
	signInThrottled prometheus.Counter
	throttleUnavail prometheus.Counter
	revokePublished prometheus.Counter
	revokeFailed    prometheus.Counter
	revokeDropped   prometheus.Counter
	mails           *prometheus.CounterVec // by purpose and outcome
	mailLimited     prometheus.Counter
	eventsRelayed   prometheus.Counter
	relayFailures   prometheus.Counter
}

func newAuthMetrics(reg *prometheus.Registry) *authMetrics {
	buckets := []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &authMetrics{
		reg: reg,
		signUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "sign_ups_total",
			Help: "Sign-up attempts by outcome (created, exists, invalid, error).",
		}, []string{"outcome"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "sign_ins_total",
			Help: "Sign-in attempts by outcome (success, invalid_credentials, invalid, error).",
		}, []string{"outcome"}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "jwts_issued_total", Help: "Access tokens (JWTs) issued.",
		}),
		hashWork: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "authsvc", Name: "password_hash_seconds",
			Help: "Time spent in one argon2id run.", Buckets: buckets,
		}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "authsvc", Name: "password_hash_wait_seconds",
			Help: "Time spent waiting for a hashing slot (the concurrency bound).", Buckets: buckets,
		}),
		signUpCommon: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "signup_rejected_common_password_total",
			Help: "Sign-ups refused because the password is on the common-password list.",
		}),
		signInThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "signin_throttled_total",
			Help: "Sign-in attempts slowed down because their account had too many recent failures.",
		}),
		throttleUnavail: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "signin_throttle_unavailable_total",
			Help: "Sign-in attempts not counted per account because Redis was unreachable (fail open).",
		}),
		revokePublished: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "revocations_published_total",
			Help: "Session revocations written to Redis (including late ones, after a retry).",
		}),
		revokeFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "revocations_failed_total",
			Help: "Session revocations whose first write to Redis failed (queued for retry).",
		}),
		revokeDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "revocations_dropped_total",
			Help: "Session revocations given up: Redis stayed down until their tokens expired, or the retry queue was full.",
		}),
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "mails_total",
			Help: "Token mails by purpose (reset-password, verify-email) and outcome (sent, failed).",
		}, []string{"purpose", "outcome"}),
		mailLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "mails_rate_limited_total",
			Help: "Reset or verification mails refused: the recipient or client IP reached its hourly limit.",
		}),
		eventsRelayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "user_events_relayed_total",
			Help: "Account events (user.deleted) moved from the outbox table to the Redis stream.",
		}),
		relayFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authsvc", Name: "user_events_relay_failures_total",
			Help: "Outbox relay rounds that failed (Redis or Postgres unavailable); the events stay queued.",
		}),
	}
	reg.MustRegister(m.mails, m.mailLimited, m.eventsRelayed, m.relayFailures)
	reg.MustRegister(m.signUps, m.signIns, m.tokens, m.hashWork, m.hashWait,
		m.signUpCommon, m.signInThrottled, m.throttleUnavail, m.revokePublished, m.revokeFailed, m.revokeDropped)
	return m
}

func (m *authMetrics) observeHash(wait, work time.Duration) {
	m.hashWait.Observe(wait.Seconds())
	m.hashWork.Observe(work.Seconds())
}

// watchQueue exports the number of requests waiting to hash.
func (m *authMetrics) watchQueue(h *password.Hasher) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "authsvc", Name: "password_hash_queue_depth",
		Help: "Requests waiting for a password hashing slot.",
	}, func() float64 { return float64(h.QueueDepth()) }))
}

package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"gatehouse.dev/kit/httpx"
)

// Headers sent on limited routes. Retry-After is RFC 9110; X-Retry-After is
// what Better Auth's client reads; RateLimit-* follow the IETF draft
// (draft-ietf-httpapi-ratelimit-headers), Reset in seconds.
const (
	HeaderRetryAfter  = "Retry-After"
	HeaderXRetryAfter = "X-Retry-After"
	HeaderLimit       = "RateLimit-Limit"
	HeaderRemaining   = "RateLimit-Remaining"
	HeaderReset       = "RateLimit-Reset"
)

// ErrRateLimited is the 429 body.
var ErrRateLimited = httpx.Errorf(http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests; try again later.")

// Admit takes one request from key's count in the bucket named bucket (so
// two routes with different limits never share a count) under lim, and
// reports whether it may go on. Every answer carries RateLimit-*; a
// rejection is answered here, 429 RATE_LIMITED with Retry-After and
// X-Retry-After, and the Result says which backend decided.
func (l *Limiter) Admit(w http.ResponseWriter, r *http.Request, bucket, key string, lim Limit) (Result, bool) {
	res := l.Allow(r.Context(), bucket+":"+key, lim)
	h := w.Header()
	h.Set(HeaderLimit, strconv.Itoa(lim.Rate))
	h.Set(HeaderRemaining, strconv.Itoa(max(res.Remaining, 0)))
	h.Set(HeaderReset, strconv.Itoa(ceilSeconds(res.ResetAfter)))
	if res.Allowed {
		return res, true
	}
	retry := max(ceilSeconds(res.RetryAfter), 1)
	h.Set(HeaderXRetryAfter, strconv.Itoa(retry))
	e := *ErrRateLimited
	e.RetryAfter = retry // httpx sets Retry-After
	httpx.WriteError(w, r, &e)
	return res, false
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

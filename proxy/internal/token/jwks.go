package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Production JWKS timings (SPEC: refresh at most every 5 minutes, unknown kid
// at most once per 30 seconds).
const (
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultUnknownKIDCooldown = 30 * time.Second
	DefaultFetchTimeout       = 5 * time.Second
	DefaultRetryMin           = 500 * time.Millisecond
	DefaultRetryMax           = 15 * time.Second
)

// JWKSConfig tunes JWKS fetching. Zero fields take the defaults above; tests
// shorten them.
type JWKSConfig struct {
	// RefreshInterval is the background refresh period once keys have loaded.
	RefreshInterval time.Duration
	// UnknownKIDCooldown is the least time between two fetches caused by a
	// token whose kid is not in the cached set.
	UnknownKIDCooldown time.Duration
	// FetchTimeout bounds one fetch.
	FetchTimeout time.Duration
	// RetryMin and RetryMax bound the back-off between start-up attempts,
	// before the key set has ever loaded.
	RetryMin, RetryMax time.Duration
	// Client fetches the key set; nil means a client with FetchTimeout that
	// does not follow redirects and uses no proxy.
	Client *http.Client
	// OnFetch, if set, is called after every fetch attempt with its error
	// (nil on success), for metrics and logs.
	OnFetch func(err error)
}

func (c *JWKSConfig) defaults() {
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.UnknownKIDCooldown <= 0 {
		c.UnknownKIDCooldown = DefaultUnknownKIDCooldown
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.OnFetch == nil {
		c.OnFetch = func(error) {}
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Timeout: c.FetchTimeout,
			Transport: &http.Transport{
				Proxy:                 nil, // the JWKS is on our own network
				DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				ResponseHeaderTimeout: c.FetchTimeout,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       time.Minute,
			},
			// A redirect is answered as the non-200 it is, so the key set
			// can only ever come from the configured URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

// keySet is the JWKS cache. The fetching, caching and refreshing are
// MicahParks/jwkset's, the storage layer of MicahParks/keyfunc. keyfunc's own
// jwt.Keyfunc is not used: for a token without kid it returns every key (we
// require a kid), and its errors do not tell an unknown kid from an alg
// mismatch. keySet adds what jwkset lacks:
//
//   - jwkset fetches once, synchronously, when the storage is built, and on
//     failure waits a whole RefreshInterval before trying again. keySet builds
//     the storage in the background and retries with back-off until the first
//     success, so start-up never blocks on authsvc and keys arrive promptly.
//   - loaded() for readiness.
//   - OnFetch for metrics, by wrapping the client's transport.
//
// jwkset keeps the last good keys when a refresh fails (it replaces its cache
// only after a complete, valid response) and rate-limits unknown-kid
// refreshes with the limiter given here.
type keySet struct {
	url string
	cfg JWKSConfig
	st  atomic.Pointer[jwkset.Storage]

	mu   sync.Mutex
	stop context.CancelFunc
}

func newKeySet(ctx context.Context, url string, cfg JWKSConfig) (*keySet, error) {
	cfg.defaults()
	ks := &keySet{url: url, cfg: cfg}
	client := *cfg.Client
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = fetchObserver{next: base, done: cfg.OnFetch}
	ks.cfg.Client = &client
	go ks.load(ctx)
	return ks, nil
}

func (ks *keySet) loaded() bool { return ks.st.Load() != nil }

// load builds the jwkset storage, retrying with back-off until the first
// fetch succeeds; from then on jwkset's own goroutine refreshes it.
func (ks *keySet) load(ctx context.Context) {
	delay := ks.cfg.RetryMin
	for {
		actx, cancel := context.WithCancel(ctx)
		st, err := ks.build(actx)
		if err == nil {
			ks.mu.Lock()
			ks.stop = cancel // ends jwkset's refresh goroutine with ctx
			ks.mu.Unlock()
			ks.st.Store(&st)
			return
		}
		cancel() // ends the refresh goroutine of the failed attempt
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, ks.cfg.RetryMax)
	}
}

func (ks *keySet) build(ctx context.Context) (jwkset.Storage, error) {
	store, err := jwkset.NewStorageFromHTTP(ks.url, jwkset.HTTPClientStorageOptions{
		Client:          ks.cfg.Client,
		Ctx:             ctx,
		HTTPTimeout:     ks.cfg.FetchTimeout,
		RefreshInterval: ks.cfg.RefreshInterval,
		// A bad key in the set fails the whole refresh, so a half-broken
		// response never replaces good keys; unsupported key types are skipped.
		NoErrorReturnFirstHTTPReq: false,
	})
	if err != nil {
		return nil, err
	}
	return jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{ks.url: store},
		// jwkset waits on this limiter with a deadline of RateLimitWaitMax and
		// gives up at once when the next slot is further away, so a flood of
		// unknown kids costs one fetch per cooldown and never queues requests
		// for the whole cooldown. The same deadline bounds that fetch.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(ks.cfg.UnknownKIDCooldown), 1),
		RateLimitWaitMax:  ks.cfg.FetchTimeout,
	})
}

// key returns the public key with id kid for alg. A JWK that names its own
// "alg" must name this one, and a JWK meant for encryption is never used.
// Any lookup failure (not found, even after the rate-limited refresh) is
// ReasonUnknownKID.
func (ks *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	st := ks.st.Load()
	if st == nil {
		return nil, fail(ReasonKeysUnavailable, errors.New("JWKS not loaded yet"))
	}
	jwk, err := (*st).KeyRead(ctx, kid)
	if err != nil {
		return nil, fail(ReasonUnknownKID, err)
	}
	m := jwk.Marshal()
	if a := m.ALG.String(); a != "" && a != alg {
		return nil, fail(ReasonBadAlg, fmt.Errorf("JWK is for %s, token says %s", a, alg))
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fail(ReasonUnknownKID, errors.New("JWK is not a signature key"))
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public() // a private JWK published by mistake still verifies only as public
	}
	return key, nil
}

// fetchObserver reports every JWKS fetch to done.
type fetchObserver struct {
	next http.RoundTripper
	done func(error)
}

func (f fetchObserver) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(r)
	switch {
	case err != nil:
		f.done(err)
	case resp.StatusCode != http.StatusOK:
		f.done(fmt.Errorf("JWKS endpoint answered %d", resp.StatusCode))
	default:
		f.done(nil)
	}
	return resp, err
}

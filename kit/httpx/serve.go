package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Router is what a service's addRoutes registers its routes on: an
// *http.ServeMux, or a recorder in the tests that check docs/openapi.json.
type Router interface {
	Handle(pattern string, handler http.Handler)
}

// Lifecycle tells health handlers whether the service is shutting down. The
// zero value is a running service.
type Lifecycle struct{ draining atomic.Bool }

// Draining reports whether shutdown has begun; /readyz then answers 503 so a
// load balancer stops sending new work.
func (l *Lifecycle) Draining() bool { return l.draining.Load() }

// NewServer returns an http.Server with the timeouts every service wants:
// a slow client cannot hold a connection open by trickling headers.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Healthz answers 200 while the process is alive.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// Readyz answers 200 when check (which may be nil) succeeds within two seconds
// and the service is not draining, else 503 UNAVAILABLE.
func Readyz(lc *Lifecycle, check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if lc != nil && lc.Draining() {
			WriteJSON(w, http.StatusServiceUnavailable, Errorf(http.StatusServiceUnavailable, "DRAINING", "Shutting down."))
			return
		}
		if check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := check(ctx); err != nil {
				LogFrom(r.Context()).Warn("not ready", zap.Error(err))
				WriteJSON(w, http.StatusServiceUnavailable, ErrUnavailable)
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// ServeConfig describes what Serve runs.
type ServeConfig struct {
	Log *zap.Logger
	// Main is the public listener; Metrics (optional) serves /metrics.
	Main, Metrics *http.Server
	// Others are further listeners (the proxy's forward-auth one), served,
	// drained and shut down like Main.
	Others []*http.Server
	// Lifecycle is flipped to draining when ctx is cancelled.
	Lifecycle *Lifecycle
	// DrainDelay keeps serving (with /readyz at 503) after the signal, the
	// time a Kubernetes endpoint removal takes to propagate.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests.
	ShutdownTimeout time.Duration
}

// Serve binds every listener (reporting a bind failure at once), serves until
// ctx is done, then drains and shuts down gracefully: readiness off, wait
// DrainDelay, stop accepting, finish in-flight requests within
// ShutdownTimeout. It returns nil after a clean shutdown.
func Serve(ctx context.Context, c ServeConfig) error {
	servers := []*http.Server{c.Main}
	if c.Metrics != nil {
		servers = append(servers, c.Metrics)
	}
	servers = append(servers, c.Others...)
	errc := make(chan error, len(servers))
	quiet := make([]*quietConns, len(servers))
	for i, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, o := range servers {
				_ = o.Close()
			}
			return fmt.Errorf("listen %s: %w", s.Addr, err)
		}
		c.Log.Info("listening", zap.String("addr", ln.Addr().String()))
		quiet[i] = trackQuiet(s)
		ln = quiet[i].listener(ln)
		go func(s *http.Server, ln net.Listener) {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(s, ln)
	}
	select {
	case err := <-errc:
		for _, s := range servers {
			_ = s.Close()
		}
		return err
	case <-ctx.Done():
	}
	if c.Lifecycle != nil {
		c.Lifecycle.draining.Store(true)
	}
	c.Log.Info("shutting down", zap.Duration("drain_delay", c.DrainDelay), zap.Duration("timeout", c.ShutdownTimeout))
	if c.DrainDelay > 0 {
		time.Sleep(c.DrainDelay)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
	defer cancel()
	var errs []error
	for i, s := range servers {
		// Shutdown waits up to 5 s for a connection that was accepted but
		// never sent a request (net/http treats StateNew as busy until then):
		// a client pool's spare connection held a rolling update for
		// DRAIN_DELAY + SHUTDOWN_TIMEOUT and made it fail (issue 12).
		// Close those while Shutdown waits for the rest: the closer starts
		// from RegisterOnShutdown, after net/http has marked the server as
		// shutting down, so a connection still in StateNew then can only
		// be one whose request net/http would drop anyway.
		done := make(chan struct{})
		s.RegisterOnShutdown(func() { quiet[i].closeUntil(done) })
		err := s.Shutdown(sctx)
		close(done)
		if err != nil {
			errs = append(errs, err)
			_ = s.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	c.Log.Info("stopped")
	return nil
}

// quietConns tracks a server's connections so that shutdown can close the
// ones that have not yet sent a whole request (StateNew). Closing them loses
// nothing: once Shutdown has marked the server, net/http drops any request
// whose header it finishes reading instead of serving it, and a connection
// whose header was read before that is already StateActive. The set changes under the
// mutex only when a connection opens or closes, never per request.
type quietConns struct {
	mu    sync.Mutex
	conns map[*stateConn]struct{}
}

// trackQuiet chains a ConnState hook onto s that records each connection's
// state.
func trackQuiet(s *http.Server) *quietConns {
	q := &quietConns{conns: map[*stateConn]struct{}{}}
	prev := s.ConnState
	s.ConnState = func(c net.Conn, st http.ConnState) {
		if rc, ok := c.(*stateConn); ok {
			rc.state.Store(int32(st))
			switch st {
			case http.StateNew:
				q.mu.Lock()
				q.conns[rc] = struct{}{}
				q.mu.Unlock()
			case http.StateClosed, http.StateHijacked:
				q.mu.Lock()
				delete(q.conns, rc)
				q.mu.Unlock()
			}
		}
		if prev != nil {
			prev(c, st)
		}
	}
	return q
}

func (q *quietConns) listener(ln net.Listener) net.Listener { return quietListener{ln} }

// closeQuiet closes every connection still in StateNew.
func (q *quietConns) closeQuiet() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for c := range q.conns {
		if http.ConnState(c.state.Load()) == http.StateNew {
			_ = c.Close()
		}
	}
}

// closeUntil closes quiet connections now and every 50 ms (one accepted
// just before the listener closed) until done is closed.
func (q *quietConns) closeUntil(done <-chan struct{}) {
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for {
		q.closeQuiet()
		select {
		case <-done:
			return
		case <-tk.C:
		}
	}
}

type quietListener struct{ net.Listener }

func (l quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stateConn{Conn: c}, nil
}

// stateConn remembers its last ConnState, so reading it needs no lock.
type stateConn struct {
	net.Conn
	state atomic.Int32
}

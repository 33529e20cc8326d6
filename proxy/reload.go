package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// reloadRoutes reads PROXY_ROUTES_FILE again and, when it is valid, swaps
// the new table in; requests already routed finish on the old one. When it
// is not valid the old table stays, every problem is logged, and the
// proxy_routes_last_reload_success metric drops to 0. Unless force is set, a
// file whose bytes have not changed is left alone (the watcher polls it).
// The first table comes from the configuration (loadConfig read the file).
func (s *server) reloadRoutes(force bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	path := s.cfg.RoutesFile
	data, err := os.ReadFile(path)
	if err == nil && !force && bytes.Equal(data, s.routesData) {
		return nil
	}
	var c routeConfig
	if err == nil {
		c, err = parseRoutesFile(data, s.cfg.UpstreamTimeout)
	}
	if err != nil {
		err = fmt.Errorf("PROXY_ROUTES_FILE %s: %w", path, err)
		s.m.routesReload(false)
		// One line per problem, so each is findable in the logs.
		problems := strings.Split(err.Error(), "; ")
		s.log.Error("routes file rejected; keeping the routes in use", zap.String("file", path), zap.Int("problems", len(problems)))
		for _, p := range problems {
			s.log.Error("routes file problem", zap.String("file", path), zap.String("problem", p))
		}
		return err
	}
	s.installRoutes(c, data)
	return nil
}

// installRoutes builds c (read from data) into a table and swaps it in.
// Callers hold s.reloadMu or run before the server starts.
func (s *server) installRoutes(c routeConfig, data []byte) {
	t := s.buildTable(c)
	s.table.Store(t)
	s.routesData = data
	s.m.routesReload(true)
	s.m.routes.Set(float64(len(t.routes)))
	s.log.Info("routes loaded", zap.String("file", s.cfg.RoutesFile), zap.Int("routes", len(t.routes)),
		zap.Int("identity_headers", len(t.identity)), zap.Bool("cors", t.cors != nil))
}

// watchRoutes reloads the routes file on every signal from hup (SIGHUP) and
// whenever its content changes, checked every poll. Polling the content
// rather than watching inotify events also follows Kubernetes ConfigMap
// volumes, which change a file by swapping a symlink above it.
func (s *server) watchRoutes(ctx context.Context, hup <-chan os.Signal, poll time.Duration) {
	if s.cfg.RoutesFile == "" {
		return
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading the routes file")
			_ = s.reloadRoutes(true)
		case <-tick.C:
			_ = s.reloadRoutes(false)
		}
	}
}

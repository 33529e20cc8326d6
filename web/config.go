package main

import (
	"time"

	"gatehouse.dev/kit/envconf"
)

// config is everything web reads from its environment.
type config struct {
	Addr            string
	MetricsAddr     string // empty: no metrics listener
	LogLevel        string
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
}

// loadConfig reads the environment and reports every problem at once.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	e := envconf.FromLookup(lookup)
	cfg := config{
		Addr:            e.Str("WEB_ADDR", ":8083"),
		MetricsAddr:     e.Disableable("WEB_METRICS_ADDR", ":9093"),
		LogLevel:        e.Str("LOG_LEVEL", "info"),
		DrainDelay:      e.NonNegDuration("DRAIN_DELAY", 0),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
	}
	return cfg, e.Err()
}

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

// loadConfig reads and checks the whole environment (addresses, LOG_LEVEL,
// durations) and reports every problem at once, so run starts nothing on a
// configuration it would refuse later.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	e := envconf.FromLookup(lookup)
	cfg := config{
		Addr:            e.Addr("WEB_ADDR", ":8083"),
		MetricsAddr:     e.DisableableAddr("WEB_METRICS_ADDR", ":9093"),
		LogLevel:        e.LogLevel("LOG_LEVEL", "info"),
		DrainDelay:      e.NonNegDuration("DRAIN_DELAY", 0),
		ShutdownTimeout: e.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
	}
	return cfg, e.Err()
}

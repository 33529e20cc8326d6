package main

import (
	"context"
	"fmt"
	"io"

	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/logging"
)

// deps are what web's handlers use, built once by run.
type deps struct {
	site *site
	lc   *httpx.Lifecycle
}

// run is the whole program; main only calls it, with the process's
// arguments (without the program name), environment, and output. It serves
// until ctx ends (main cancels it on SIGINT or SIGTERM), then drains and
// shuts down gracefully. web has no subcommands and writes nothing to
// stdout; logs go to stderr.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q (want no arguments)", args[0])
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := logging.New(stderr, cfg.LogLevel, "web")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	site, err := loadSite()
	if err != nil {
		return err // a broken embed is a build bug; refuse to start
	}
	return serve(ctx, cfg, log, &deps{site: site, lc: &httpx.Lifecycle{}})
}

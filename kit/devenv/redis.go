package devenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Dir holds the pid file, log and (when Durable) the append-only file.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Durable turns on the append-only file (make run).
	Durable bool
	// Args are more redis-server arguments (--replicaof …, --cluster-enabled
	// yes …), appended last.
	Args []string
	// TLS, when set, makes the server speak TLS only, on Port.
	TLS *RedisTLS
	// Sentinel, when set, runs a sentinel (redis-server --sentinel) instead
	// of a data server.
	Sentinel *SentinelOptions
}

// Redis is a private redis-server.
type Redis struct {
	opts   RedisOptions
	cred   *syscall.Credential
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedis starts redis-server and returns once it answers PING.
func StartRedis(o RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found (apt-get install redis-server)")
	}
	_ = bin
	cred, err := serviceUser("redis", "nobody")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkTraversable(o.Dir, cred); err != nil {
		return nil, err
	}
	if err := chownTree(o.Dir, cred); err != nil {
		return nil, err
	}
	r := &Redis{opts: o, cred: cred}
	for attempt := 0; ; attempt++ {
		if o.Port == 0 || attempt > 0 {
			if r.opts.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		err = r.Start()
		if err == nil || o.Port != 0 || attempt == 4 {
			return r, err
		}
	}
}

// Start runs the server on its port (after Stop, the same port).
func (r *Redis) Start() error {
	if r.cmd != nil {
		return errors.New("redis: already running")
	}
	logPath := filepath.Join(r.opts.Dir, "redis.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"--port", strconv.Itoa(r.opts.Port), "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", r.opts.Dir, "--pidfile", filepath.Join(r.opts.Dir, "redis.pid"),
		"--daemonize", "no", "--save", "", "--loglevel", "warning"}
	if r.opts.Durable {
		args = append(args, "--appendonly", "yes")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if args, err = r.topologyArgs(args); err != nil {
		lf.Close()
		return err
	}
	cmd := command(r.cred, lf, "redis-server", args...)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("redis: %w", err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(r.exited) }()
	if !waitFor(15*time.Second, r.exited, r.ping) {
		_ = r.Stop()
		return fmt.Errorf("redis did not become ready on port %d: %s", r.opts.Port, tail(logPath, 2000))
	}
	return nil
}

func (r *Redis) ping() bool {
	c, err := r.dial()
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Stop shuts the server down and waits for it. Stopping a stopped server is
// a no-op.
func (r *Redis) Stop() error {
	if r.cmd == nil {
		return nil
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Addr is host:port on loopback.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.opts.Port) }

// URL is a redis:// URL for database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

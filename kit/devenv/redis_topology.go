package devenv

// Redis beyond one server, for the topology tests: TLS, a master with a
// replica watched by sentinels, and a Redis Cluster. Every process is a
// Debian redis-server on a free loopback port, in a directory the caller owns.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisTLS are the PEM files of a TLS-only server. Clients need not present
// a certificate.
type RedisTLS struct {
	CertFile, KeyFile, CAFile string
}

// SentinelOptions make a Redis process a sentinel watching one master.
type SentinelOptions struct {
	MasterName string
	MasterAddr string // host:port
	Quorum     int    // default 2
	// DownAfter is how long the master may be silent before this sentinel
	// calls it down (default 1s: tests want fast failovers).
	DownAfter time.Duration
	// FailoverTimeout (default 3s) bounds one failover attempt; after a
	// split vote the sentinels try again only after twice this.
	FailoverTimeout time.Duration
}

// topologyArgs adapts the base arguments for TLS and sentinels and appends
// Args.
func (r *Redis) topologyArgs(args []string) ([]string, error) {
	port := strconv.Itoa(r.opts.Port)
	if s := r.opts.Sentinel; s != nil {
		host, mport, err := net.SplitHostPort(s.MasterAddr)
		if err != nil {
			return nil, fmt.Errorf("sentinel: master address %q: %w", s.MasterAddr, err)
		}
		q, down, fo := s.Quorum, s.DownAfter, s.FailoverTimeout
		if q == 0 {
			q = 2
		}
		if down == 0 {
			down = time.Second
		}
		if fo == 0 {
			fo = 3 * time.Second
		}
		conf := filepath.Join(r.opts.Dir, "sentinel.conf")
		// A sentinel rewrites its file with what it learns; keep it across
		// restarts.
		if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
			body := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\nsentinel down-after-milliseconds %[1]s %[5]d\n"+
				"sentinel failover-timeout %[1]s %[6]d\nsentinel parallel-syncs %[1]s 1\n",
				s.MasterName, host, mport, q, down.Milliseconds(), fo.Milliseconds())
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				return nil, err
			}
			if err := chownTree(r.opts.Dir, r.cred); err != nil {
				return nil, err
			}
		}
		args = []string{conf, "--sentinel", "--port", port, "--bind", "127.0.0.1", "--protected-mode", "yes",
			"--dir", r.opts.Dir, "--pidfile", filepath.Join(r.opts.Dir, "redis.pid"),
			"--daemonize", "no", "--loglevel", "warning"}
	}
	if t := r.opts.TLS; t != nil {
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile, "--tls-ca-cert-file", t.CAFile,
			"--tls-auth-clients", "no")
	}
	return append(args, r.opts.Args...), nil
}

// dial connects to the server, over TLS when it speaks TLS.
func (r *Redis) dial() (net.Conn, error) {
	if t := r.opts.TLS; t != nil {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		d := &net.Dialer{Timeout: time.Second}
		return tls.DialWithDialer(d, "tcp", r.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	}
	return net.DialTimeout("tcp", r.Addr(), time.Second)
}

// Port is the TCP port on 127.0.0.1.
func (r *Redis) Port() int { return r.opts.Port }

// Running reports whether the process is up (started and not stopped).
func (r *Redis) Running() bool { return r.cmd != nil }

// CLI runs redis-cli against this (plain TCP) server and returns its
// trimmed output.
func (r *Redis) CLI(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.opts.Port)}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("redis-cli %v: %w: %s", args, err, s)
	}
	return s, nil
}

// startRedisIn starts one server in dir/name.
func startRedisIn(dir, name string, o RedisOptions) (*Redis, error) {
	o.Dir = filepath.Join(dir, name)
	return StartRedis(o)
}

// SentinelGroup is a master, its replicas and the sentinels watching them.
type SentinelGroup struct {
	Name      string
	Master    *Redis // the master at start; after a failover, see CurrentMaster
	Replicas  []*Redis
	Sentinels []*Redis
}

// StartSentinelGroup starts a master, `replicas` replicas of it and
// `sentinels` sentinels (quorum 2) in subdirectories of dir, and returns once
// every sentinel knows the replicas. downAfter is the sentinels'
// down-after-milliseconds.
func StartSentinelGroup(dir, name string, replicas, sentinels int, downAfter time.Duration) (*SentinelGroup, error) {
	g := &SentinelGroup{Name: name}
	var err error
	if g.Master, err = startRedisIn(dir, "master", RedisOptions{}); err != nil {
		return nil, err
	}
	for i := range replicas {
		r, err := startRedisIn(dir, fmt.Sprintf("replica%d", i), RedisOptions{
			Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(g.Master.Port()), "--replica-serve-stale-data", "yes"}})
		if err != nil {
			g.Stop()
			return nil, err
		}
		g.Replicas = append(g.Replicas, r)
	}
	for i := range sentinels {
		s, err := startRedisIn(dir, fmt.Sprintf("sentinel%d", i), RedisOptions{Sentinel: &SentinelOptions{
			MasterName: name, MasterAddr: g.Master.Addr(), DownAfter: downAfter}})
		if err != nil {
			g.Stop()
			return nil, err
		}
		g.Sentinels = append(g.Sentinels, s)
	}
	// Replicas in sync and known to every sentinel, sentinels known to
	// each other: only then can a failover happen.
	ok := waitFor(30*time.Second, nil, func() bool {
		for _, r := range g.Replicas {
			if out, _ := r.CLI("INFO", "replication"); !strings.Contains(out, "master_link_status:up") {
				return false
			}
		}
		for _, s := range g.Sentinels {
			out, err := s.CLI("SENTINEL", "master", name)
			if err != nil {
				return false
			}
			f := strings.Fields(out)
			if field(f, "num-slaves") != strconv.Itoa(replicas) || field(f, "num-other-sentinels") != strconv.Itoa(sentinels-1) {
				return false
			}
		}
		return true
	})
	if !ok {
		g.Stop()
		return nil, errors.New("sentinel group did not settle within 30s (replicas in sync, sentinels aware of each other)")
	}
	return g, nil
}

// field returns the value after key in redis-cli's key/value line list.
func field(f []string, key string) string {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == key {
			return f[i+1]
		}
	}
	return ""
}

// URL is the redis+sentinel:// URL of the group.
func (g *SentinelGroup) URL() string {
	var addrs []string
	for _, s := range g.Sentinels {
		addrs = append(addrs, s.Addr())
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + g.Name + "/0"
}

// CurrentMaster asks the sentinels for the master's address.
func (g *SentinelGroup) CurrentMaster() (string, error) {
	var last error
	for _, s := range g.Sentinels {
		if !s.Running() {
			continue
		}
		out, err := s.CLI("SENTINEL", "get-master-addr-by-name", g.Name)
		if err != nil {
			last = err
			continue
		}
		f := strings.Fields(out)
		if len(f) == 2 {
			return net.JoinHostPort(f[0], f[1]), nil
		}
		last = fmt.Errorf("sentinel answered %q", out)
	}
	return "", last
}

// Stop stops every process of the group.
func (g *SentinelGroup) Stop() {
	for _, s := range g.Sentinels {
		_ = s.Stop()
	}
	for _, r := range g.Replicas {
		_ = r.Stop()
	}
	if g.Master != nil {
		_ = g.Master.Stop()
	}
}

// RedisCluster is a Redis Cluster of masters without replicas.
type RedisCluster struct {
	Nodes []*Redis
}

// StartRedisCluster starts n (≥3) cluster nodes in subdirectories of dir,
// joins them with the 16384 slots split evenly, and returns once every node
// reports cluster_state:ok. A node that stops leaves its slots unserved
// (cluster-require-full-coverage no: the others keep serving theirs) until it
// is started again.
func StartRedisCluster(dir string, n int) (*RedisCluster, error) {
	if n < 3 {
		return nil, errors.New("redis cluster: want at least 3 masters")
	}
	c := &RedisCluster{}
	for i := range n {
		r, err := startRedisIn(dir, fmt.Sprintf("node%d", i), RedisOptions{Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
			"--appendonly", "yes"}})
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	for _, r := range c.Nodes {
		args = append(args, r.Addr())
	}
	out, err := exec.Command("redis-cli", append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// WaitOK waits until every running node reports cluster_state:ok and knows
// all n nodes.
func (c *RedisCluster) WaitOK(d time.Duration) error {
	ok := waitFor(d, nil, func() bool {
		for _, r := range c.Nodes {
			out, err := r.CLI("CLUSTER", "INFO")
			if err != nil || !strings.Contains(out, "cluster_state:ok") ||
				!strings.Contains(out, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))) {
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("redis cluster not ok within %s", d)
	}
	return nil
}

// URL is the redis+cluster:// URL with every node as a seed.
func (c *RedisCluster) URL() string {
	var addrs []string
	for _, r := range c.Nodes {
		addrs = append(addrs, r.Addr())
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// Stop stops every node.
func (c *RedisCluster) Stop() {
	for _, r := range c.Nodes {
		_ = r.Stop()
	}
}

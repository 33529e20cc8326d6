package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gatehouse.dev/kit/devenv"
)

// kwokStages replaces kwok's default pod lifecycle: see the file.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// Options for Start.
type Options struct {
	Nodes int       // simulated nodes, at least 1
	Log   io.Writer // progress lines
	// KeepDir keeps the state directory (logs, certificates) after Stop.
	KeepDir bool
}

// Cluster is a running control plane. Stop ends every process it started
// and removes its state.
type Cluster struct {
	Dir        string // state: certificates, logs, etcd data
	Server     string // https://127.0.0.1:PORT
	Kubeconfig string // system:masters client certificate
	Bins       *Binaries
	Nodes      []string
	opts       Options
	procs      []*proc
}

// proc is one started program: its own process group, output in a log file.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// Start runs etcd, kube-apiserver (RBAC and Pod Security admission on),
// kube-controller-manager, kube-scheduler and kwok, creates opts.Nodes
// simulated nodes and returns once they are Ready. On error everything
// started so far is stopped.
func Start(ctx context.Context, bins *Binaries, opts Options) (c *Cluster, err error) {
	if opts.Nodes < 1 {
		opts.Nodes = 1
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "gatehouse-k8s-verify-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, Bins: bins, opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	p, err := newPKI(dir)
	if err != nil {
		return c, fmt.Errorf("certificates: %w", err)
	}

	// etcd: data on tmpfs when there is one (fsync on a busy disk is what
	// makes etcd slow), else in the state directory.
	etcdData := filepath.Join(dir, "etcd")
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "gatehouse-etcd-"); err == nil {
			etcdData = d
			// Removed by Stop, like the processes.
			c.procs = append(c.procs, &proc{name: "etcd-data", exited: closed(), log: d})
		}
	}
	clientPort, peerPort, err := freePorts2()
	if err != nil {
		return c, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := c.start("etcd", bins.Etcd, nil,
		"--name=verify", "--data-dir="+etcdData,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=verify="+peerURL, "--initial-cluster-state=new",
		"--log-level=warn"); err != nil {
		return c, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", nil, 30*time.Second); err != nil {
		return c, err
	}

	apiPort, err := devenv.FreePort()
	if err != nil {
		return c, err
	}
	c.Server = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := c.start("kube-apiserver", bins.APIServer, nil,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(dir, "apiserver"),
		"--tls-cert-file="+p.serverCertPath, "--tls-private-key-file="+p.serverKeyPath,
		"--client-ca-file="+p.caPath,
		"--authorization-mode=Node,RBAC",
		// PodSecurity is on by default; named so that nobody turns it off here.
		"--enable-admission-plugins=NodeRestriction,PodSecurity",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saPath,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		// The kubernetes Service would point at 127.0.0.1, which Endpoints
		// validation refuses; nothing in the simulation needs it.
		"--endpoint-reconciler-type=none",
		"--profiling=false"); err != nil {
		return c, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	if err := c.waitHTTP(ctx, "kube-apiserver", c.Server+"/readyz", pool, 180*time.Second); err != nil {
		return c, err
	}
	if c.Kubeconfig, err = p.kubeconfig(c.Server); err != nil {
		return c, err
	}

	kc := "--kubeconfig=" + c.Kubeconfig
	if err := c.start("kube-controller-manager", bins.ControllerManager, nil, kc,
		"--leader-elect=false", "--secure-port=0",
		"--service-account-private-key-file="+p.saPath, "--root-ca-file="+p.caPath,
		"--use-service-account-credentials=false",
		// A simulated node's Ready condition goes through the node-lifecycle
		// controller, which removes the not-ready taint.
		"--controllers=*",
		"--horizontal-pod-autoscaler-sync-period=2s",
		// kwok renews the nodes' leases every 10s; on a loaded machine a
		// renewal can be late, and 50s (the default) then marks every pod
		// on the node NotReady mid-check. No real kubelet here to be down.
		"--node-monitor-grace-period=2m",
		"--profiling=false"); err != nil {
		return c, err
	}
	if err := c.start("kube-scheduler", bins.Scheduler, nil, kc,
		"--leader-elect=false", "--secure-port=0", "--profiling=false"); err != nil {
		return c, err
	}
	// kwok's pod stages: Ready unless a probe can never pass (the file).
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
		return c, err
	}
	// Node heartbeats through Leases, as kubelets send them (renewed every
	// quarter of the duration), not through status updates of the node.
	if err := c.start("kwok", bins.Kwok, nil, kc, "--config="+stages, "--node-lease-duration-seconds=40",
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--manage-nodes-with-label-selector=",
		"--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
		"--disregard-status-with-label-selector=",
		"--cidr=10.244.0.1/16", "--node-ip=127.0.0.1"); err != nil {
		return c, err
	}
	if err := c.addNodes(ctx, opts.Nodes); err != nil {
		return c, err
	}
	return c, nil
}

func closed() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func freePorts2() (int, int, error) {
	a, err := devenv.FreePort()
	if err != nil {
		return 0, 0, err
	}
	for {
		b, err := devenv.FreePort()
		if err != nil || b != a {
			return a, b, err
		}
	}
}

// start runs bin in its own process group with output to DIR/name.log. The
// child is killed if this process dies (Pdeathsig), so an interrupted
// verifier leaves nothing running.
func (c *Cluster) start(name, bin string, env []string, args ...string) error {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
	fmt.Fprintf(c.opts.Log, "started %s (pid %d)\n", name, cmd.Process.Pid)
	return nil
}

// Alive returns an error naming the first started program that has exited.
func (c *Cluster) Alive() error {
	for _, p := range c.procs {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, LogTail(p.log, 30))
		default:
		}
	}
	return nil
}

// Logs returns the log file of each started program by name.
func (c *Cluster) Logs() map[string]string {
	m := map[string]string{}
	for _, p := range c.procs {
		if p.cmd != nil {
			m[p.name] = p.log
		}
	}
	return m
}

// LogTail returns the last n lines of a log file.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) waitHTTP(ctx context.Context, name, url string, pool *x509.CertPool, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	if pool != nil {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		if err := c.Alive(); err != nil {
			return err
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(c.opts.Log, "%s ready in %s\n", name, time.Since(start).Round(10*time.Millisecond))
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %v)\n%s", name, timeout, err, LogTail(filepath.Join(c.Dir, name+".log"), 30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kubectl runs the cached kubectl against this cluster.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, c.Bins.Kubectl, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, e.Bytes())
	}
	return o.Bytes(), e.Bytes(), err
}

// addNodes creates n nodes that kwok manages (the annotation) and waits until
// every one is Ready and untainted, which takes kwok's status updates and
// the node-lifecycle controller.
func (c *Cluster) addNodes(ctx context.Context, n int) error {
	var doc strings.Builder
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		c.Nodes = append(c.Nodes, name)
		// Two zones, so a zone spread constraint has something to spread over.
		fmt.Fprintf(&doc, `---
apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: %[1]s
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-%[2]c
    type: kwok
spec:
  podCIDR: 10.244.%[3]d.0/24
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
  nodeInfo:
    kubeletVersion: fake
`, name, 'a'+rune(i%2), i+1)
	}
	if _, _, err := c.Kubectl(ctx, []byte(doc.String()), "apply", "-f", "-"); err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(120 * time.Second)
	for {
		if err := c.Alive(); err != nil {
			return err
		}
		out, _, err := c.Kubectl(ctx, nil, "get", "nodes", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}{"\n"}{end}`)
		ready := 0
		if err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				if len(f) == 2 && f[1] == "True" {
					ready++
				}
			}
		}
		if ready == n {
			fmt.Fprintf(c.opts.Log, "%d simulated nodes Ready and untainted in %s\n", n, time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes not Ready and untainted after 120s:\n%s%v", out, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Stop ends every started program, newest first (SIGTERM to its process
// group, SIGKILL after 10s), and removes the state unless KeepDir.
func (c *Cluster) Stop() {
	var tmpfs []string
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.cmd == nil {
			tmpfs = append(tmpfs, p.log)
			continue
		}
		select {
		case <-p.exited:
			continue
		default:
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	c.procs = nil
	for _, d := range tmpfs {
		os.RemoveAll(d)
	}
	if c.opts.KeepDir {
		fmt.Fprintf(c.opts.Log, "state kept in %s\n", c.Dir)
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(c.opts.Log, "remove %s: %v\n", c.Dir, err)
	}
}

package redisx_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse.dev/kit/redisx"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseForms(t *testing.T) {
	cases := []struct {
		url  string
		want redisx.Config
	}{
		{"redis://127.0.0.1:6380/2", redisx.Config{Kind: redisx.Single, Addrs: []string{"127.0.0.1:6380"}, DB: 2}},
		{"redis://cache", redisx.Config{Kind: redisx.Single, Addrs: []string{"cache:6379"}}},
		{"redis://cache/", redisx.Config{Kind: redisx.Single, Addrs: []string{"cache:6379"}}},
		{"redis://cache:6379/0?", redisx.Config{Kind: redisx.Single, Addrs: []string{"cache:6379"}}},
		{"REDIS://[::1]:7000/1", redisx.Config{Kind: redisx.Single, Addrs: []string{"[::1]:7000"}, DB: 1}},
		{"redis://[::1]", redisx.Config{Kind: redisx.Single, Addrs: []string{"[::1]:6379"}}},
		{"redis://:s3cr%2Ft@h:1/0", redisx.Config{Kind: redisx.Single, Addrs: []string{"h:1"}, Password: "s3cr/t"}},
		{"redis://app:pw@h:1/0", redisx.Config{Kind: redisx.Single, Addrs: []string{"h:1"}, Username: "app", Password: "pw"}},
		{"redis://lonepw@h:1", redisx.Config{Kind: redisx.Single, Addrs: []string{"h:1"}, Password: "lonepw"}},
		{"redis://:p@ss@h:1", redisx.Config{Kind: redisx.Single, Addrs: []string{"h:1"}, Password: "p@ss"}},
		{"redis+sentinel://s1:26379,s2:26380,s3/mymaster", redisx.Config{Kind: redisx.Sentinel,
			Addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, MasterName: "mymaster"}},
		{"redis+sentinel://:pw@s1,s2/mymaster/3", redisx.Config{Kind: redisx.Sentinel,
			Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", DB: 3, Password: "pw"}},
		{"redis+cluster://n1:7000, n2:7001,n3:7002", redisx.Config{Kind: redisx.Cluster,
			Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}}},
		{"redis+cluster://u:pw@n1/0", redisx.Config{Kind: redisx.Cluster, Addrs: []string{"n1:6379"}, Username: "u", Password: "pw"}},
	}
	for _, c := range cases {
		got, err := redisx.Parse(c.url, redisx.Extra{})
		if err != nil {
			t.Errorf("Parse(%q): %v", c.url, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", c.url, *got, c.want)
		}
	}
}

func TestParseTLSAndCompanions(t *testing.T) {
	dir := t.TempDir()
	files := testenv.NewTLSFiles(t, dir)
	for _, u := range []string{"rediss://h:6380/0", "rediss+sentinel://s1,s2/m", "rediss+cluster://n1,n2"} {
		c, err := redisx.Parse(u, redisx.Extra{CAFile: files.CAFile, SentinelPassword: "sp"})
		if err != nil {
			t.Fatalf("Parse(%q): %v", u, err)
		}
		if c.TLS == nil || c.TLS.RootCAs == nil || c.SentinelPassword != "sp" {
			t.Errorf("Parse(%q): TLS %v, sentinel password %q: want TLS with the CA as roots and the sentinel password", u, c.TLS, c.SentinelPassword)
		}
	}
	c, err := redisx.Parse("rediss://h", redisx.Extra{})
	if err != nil || c.TLS == nil || c.TLS.RootCAs != nil {
		t.Errorf("rediss:// without a CA file: %+v, %v; want TLS on the system roots", c, err)
	}
	if c, _ := redisx.Parse("redis://h", redisx.Extra{}); c.TLS != nil {
		t.Errorf("redis:// has TLS on")
	}
	if s := (&redisx.Config{Kind: redisx.Sentinel, Addrs: []string{"a:1", "b:2"}, MasterName: "m", Password: "pw"}).String(); s != "sentinel m via a:1,b:2/0" {
		t.Errorf("String() = %q", s)
	}

	junk := filepath.Join(dir, "junk.pem")
	_ = os.WriteFile(junk, []byte("not a certificate"), 0o600)
	errCases := []struct{ url, ca, want string }{
		{"redis://h", files.CAFile, "REDIS_CA_FILE: set but REDIS_URL is not TLS"},
		{"rediss://h", filepath.Join(dir, "missing.pem"), "REDIS_CA_FILE: cannot read"},
		{"rediss://h", junk, "REDIS_CA_FILE: " + junk + " holds no PEM certificate"},
	}
	for _, c := range errCases {
		_, err := redisx.Parse(c.url, redisx.Extra{CAFile: c.ca})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, CA %s) = %v, want an error containing %q", c.url, c.ca, err, c.want)
		}
	}
}

// Every malformed URL is refused with a message that names REDIS_URL, says
// what is wrong, and never repeats the password.
func TestParseErrors(t *testing.T) {
	const pw = "hunter2-SECRET"
	cases := []struct{ url, want string }{
		{"", "empty"},
		{"  ", "empty"},
		{"localhost:6379", "not a URL"},
		{"http://:" + pw + "@h", `unsupported scheme "http"`},
		{"re dis://:" + pw + "@h", "unsupported scheme: want"},
		{"redis://:" + pw + "@", "a host is missing"},
		{"redis://:" + pw + "@h1,h2", "redis:// takes one host"},
		{"rediss://:" + pw + "@h1,,h2", "a host is missing"},
		{"redis://:" + pw + "@h:port", "has a bad port"},
		{"redis://:" + pw + "@h:0", "has a bad port"},
		{"redis://:" + pw + "@h:70000", "has a bad port"},
		{"redis://:" + pw + "@::1:6379", "put IPv6 addresses in brackets"},
		{"redis://:" + pw + "@h/x", "the database must be a number"},
		{"redis://:" + pw + "@h/-1", "the database must be a number"},
		{"redis://:" + pw + "@h/0/1", "the path must be a database number"},
		{"redis://:" + pw + "@h/0?dial_timeout=1", "query parameters are not supported"},
		{"redis://:" + pw + "@h/0#frag", "a fragment"},
		{"redis://:" + pw + "%zz@h", "the password is not valid percent-encoding"},
		{"redis://u%zz:" + pw + "@h", "the user name is not valid percent-encoding"},
		{"redis+sentinel://:" + pw + "@s1,s2", "needs the master's name"},
		{"redis+sentinel://:" + pw + "@s1,s2/", "needs the master's name"},
		{"redis+sentinel://:" + pw + "@s1/m/0/1", "needs the master's name"},
		{"redis+sentinel://:" + pw + "@s1/m%20x", "the master name must be"},
		{"redis+sentinel://:" + pw + "@s1/m/x", "the database must be a number"},
		{"redis+cluster://:" + pw + "@n1,n2/1", "has only database 0"},
		{"redis+cluster://:" + pw + "@n1,n2/0/0", "has only database 0"},
		{"redis+cluster://:" + pw + "@n1,n 2", "is not a host name"},
	}
	for _, c := range cases {
		_, err := redisx.Parse(c.url, redisx.Extra{})
		if err == nil {
			t.Errorf("Parse(%q) accepted", c.url)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "REDIS_URL: ") || !strings.Contains(msg, c.want) {
			t.Errorf("Parse(%q) = %q, want REDIS_URL: …%s…", c.url, msg, c.want)
		}
		if strings.Contains(msg, pw) || strings.Contains(msg, "hunter2") {
			t.Errorf("Parse(%q) error repeats the password: %q", c.url, msg)
		}
	}
}

// rediss:// reaches a TLS-only redis-server whose certificate comes from a
// CA made here, and only with that CA: no CA (system roots), another CA and
// plain redis:// all fail.
func TestTLSRedis(t *testing.T) {
	t.Parallel()
	srv, files := testenv.NewTLSRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := redisx.Options{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	open := func(u, ca string) redis.UniversalClient {
		c, err := redisx.Parse(u, redisx.Extra{CAFile: ca})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		rdb := c.NewClient(opts)
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	good := open("rediss://"+srv.Addr()+"/0", files.CAFile)
	if err := good.Set(ctx, "tls-key", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET over rediss:// with the test CA: %v", err)
	}
	if v, err := good.Get(ctx, "tls-key").Result(); err != nil || v != "v" {
		t.Fatalf("GET over TLS = %q, %v", v, err)
	}
	// Pub/sub (the revocation channel) works over TLS too.
	ps := good.Subscribe(ctx, "tls-ch")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe over TLS: %v", err)
	}
	if err := good.Publish(ctx, "tls-ch", "hello").Err(); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if m, err := ps.ReceiveMessage(ctx); err != nil || m.Payload != "hello" {
		t.Fatalf("pub/sub over TLS: %v, %v", m, err)
	}

	other := testenv.NewTLSFiles(t, t.TempDir())
	for name, rdb := range map[string]redis.UniversalClient{
		"rediss:// with another CA":   open("rediss://"+srv.Addr()+"/0", other.CAFile),
		"rediss:// with system roots": open("rediss://"+srv.Addr()+"/0", ""),
		"plain redis:// to TLS":       open("redis://"+srv.Addr()+"/0", ""),
	} {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			t.Errorf("%s: PING succeeded, want a failure", name)
		}
	}
}

// fakeEnv records FromEnv's problems.
type fakeEnv struct {
	vars  map[string]string
	fails []string
}

func (f *fakeEnv) Str(k, def string) string {
	if v := f.vars[k]; v != "" {
		return v
	}
	return def
}
func (f *fakeEnv) Plain(k string) string { return f.vars[k] }
func (f *fakeEnv) Fail(k, want string)   { f.fails = append(f.fails, k+": "+want) }

// FromEnv is how every service reads REDIS_URL: problems go to the reader,
// the hint only on REDIS_URL's own message, and the URL is never quoted.
func TestFromEnv(t *testing.T) {
	e := &fakeEnv{}
	if c := redisx.FromEnv(e, "redis://127.0.0.1:6379/0", " HINT"); c == nil || len(e.fails) != 0 {
		t.Fatalf("good URL: config %v, problems %q", c, e.fails)
	}
	e = &fakeEnv{}
	if c := redisx.FromEnv(e, "http://user:s3cret@host/", " HINT"); c != nil || len(e.fails) != 1 ||
		!strings.HasPrefix(e.fails[0], "REDIS_URL: ") || !strings.HasSuffix(e.fails[0], " HINT") || strings.Contains(e.fails[0], "s3cret") {
		t.Fatalf("bad URL: config %v, problems %q", c, e.fails)
	}
	e = &fakeEnv{vars: map[string]string{"REDIS_CA_FILE": "/nonexistent/ca.pem"}}
	if c := redisx.FromEnv(e, "rediss://127.0.0.1:6380/0", " HINT"); c != nil || len(e.fails) != 1 ||
		!strings.HasPrefix(e.fails[0], "REDIS_CA_FILE: ") || strings.HasSuffix(e.fails[0], " HINT") {
		t.Fatalf("unreadable CA file: config %v, problems %q", c, e.fails)
	}
}

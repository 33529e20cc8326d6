package devenv

// A streaming standby of a private Postgres, for the failover test: made
// with pg_basebackup -R, promoted with pg_promote().

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartStandby copies p with pg_basebackup into dir/data and starts it as a
// streaming standby (hot standby: it answers read-only queries) on a free
// port, with the same superuser password. It returns once the standby
// accepts connections.
func (p *Postgres) StartStandby(dir string) (*Postgres, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "pg.password"), []byte(p.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := chownTree(dir, p.cred); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "basebackup.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := command(p.cred, lf, filepath.Join(p.bin, "pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port()), "-U", "postgres",
		"-D", filepath.Join(dir, "data"), "-R", "-X", "stream", "-c", "fast", "--no-sync")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.password, "PGAPPNAME=standby")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, tail(logPath, 2000))
	}
	s := &Postgres{opts: PostgresOptions{Dir: dir, Durable: p.opts.Durable}, bin: p.bin, cred: p.cred, password: p.password}
	for attempt := 0; ; attempt++ {
		if s.opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
		if err = s.Start(); err == nil || attempt == 4 {
			return s, err
		}
	}
}

// SQL runs one statement as the superuser on database postgres and returns
// psql's unaligned output.
func (p *Postgres) SQL(sql string) (string, error) {
	cmd := exec.Command(filepath.Join(p.bin, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port), "-U", "postgres", "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %w: %s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// SetSynchronous makes every commit on p wait for a standby's flush
// (synchronous_standby_names = '*', synchronous_commit = on) or stops
// waiting, and, when turning it on, waits until a standby is in sync.
func (p *Postgres) SetSynchronous(on bool) error {
	names, commit := "''", "'off'"
	if on {
		names, commit = "'*'", "'on'"
	}
	for _, q := range []string{
		"ALTER SYSTEM SET synchronous_standby_names = " + names,
		"ALTER SYSTEM SET synchronous_commit = " + commit,
		"SELECT pg_reload_conf()",
	} {
		if _, err := p.SQL(q); err != nil {
			return err
		}
	}
	if !on {
		return nil
	}
	if !waitFor(30*time.Second, p.exited, func() bool {
		out, _ := p.SQL("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
		return out == "1"
	}) {
		return fmt.Errorf("postgres: no standby in sync within 30s")
	}
	return nil
}

// Promote turns a standby into a primary (pg_promote waits until it
// accepts writes).
func (p *Postgres) Promote() error {
	out, err := p.SQL("SELECT pg_promote(true, 30)")
	if err == nil && out != "t" {
		err = fmt.Errorf("pg_promote answered %q", out)
	}
	return err
}

// Kill stops the server and all its processes at once (SIGKILL to the
// process group), as a crash of the machine would.
func (p *Postgres) Kill() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// MultiHostURL is a connection URL for database db naming every server's
// address in turn, with target_session_attrs=read-write so clients connect
// to whichever one accepts writes.
func MultiHostURL(db string, servers ...*Postgres) string {
	var hosts []string
	for _, s := range servers {
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(s.Port()))
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", servers[0].password),
		Host: strings.Join(hosts, ","), Path: "/" + db, RawQuery: "sslmode=disable&target_session_attrs=read-write"}
	return u.String()
}

package testenv

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestDatabaseIsUsableAndIsolated(t *testing.T) {
	a, b := Database(t), Database(t)
	if a == b {
		t.Fatalf("two calls returned the same database %q", a)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("SELECT = %d, %v; want 42", n, err)
	}
}

func TestRedisAnswers(t *testing.T) {
	c, err := net.DialTimeout("tcp", RedisAddr(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("PING\r\n"))
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); got != "+PONG\r\n" {
		t.Fatalf("PING answered %q", got)
	}
}

func TestDedicatedPostgresRestarts(t *testing.T) {
	pg := NewPostgres(t)
	ctx := context.Background()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, pg.URL("postgres")); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	conn.Close(ctx)
}

// FreeAddr never hands out one port twice, and each is below the ephemeral
// range and bindable.
func TestFreeAddrIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
		_, port, _ := net.SplitHostPort(a)
		if n, _ := strconv.Atoi(port); n < portLow || n >= portHigh {
			t.Fatalf("FreeAddr port %d outside [%d, %d)", n, portLow, portHigh)
		}
	}
}

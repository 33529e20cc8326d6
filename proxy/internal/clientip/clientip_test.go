package clientip_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"gatehouse.dev/proxy/internal/clientip"
)

func TestClientIP(t *testing.T) {
	r, err := clientip.NewResolver([]string{"10.0.0.0/8", "192.0.2.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
		trusted      bool
	}{
		{"untrusted peer, no header", "203.0.113.9:5000", nil, "203.0.113.9", false},
		{"untrusted peer ignores XFF", "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9", false},
		{"untrusted peer ignores rotating XFF", "203.0.113.9:5000", []string{"9.9.9.9, 10.0.0.1"}, "203.0.113.9", false},
		{"trusted peer, one hop", "10.0.0.5:1", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"right-most untrusted wins", "10.0.0.5:1", []string{"1.1.1.1, 198.51.100.7, 10.0.0.9"}, "198.51.100.7", true},
		{"spoofed left entries ignored", "10.0.0.5:1", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7", true},
		{"several header lines", "10.0.0.5:1", []string{"6.6.6.6, 198.51.100.7", "10.1.1.1"}, "198.51.100.7", true},
		{"garbage stops the walk", "10.0.0.5:1", []string{"6.6.6.6, garbage, 10.0.0.7"}, "10.0.0.7", true},
		{"all trusted: left-most", "10.0.0.5:1", []string{"10.9.9.9, 192.0.2.1"}, "10.9.9.9", true},
		{"trusted peer without XFF", "192.0.2.1:80", nil, "192.0.2.1", true},
		{"ipv6 peer trusted, ipv6 client", "[fd00::1]:443", []string{"2001:db8::5"}, "2001:db8::5", true},
		{"entry with port", "10.0.0.5:1", []string{"198.51.100.7:4711"}, "198.51.100.7", true},
		{"bracketed ipv6 entry", "10.0.0.5:1", []string{"[2001:db8::7]"}, "2001:db8::7", true},
		{"4in6 peer unmapped", "[::ffff:10.0.0.5]:1", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"bad remote addr", "nonsense", nil, "invalid IP", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			got, trusted := r.ClientIP(tt.remote, h)
			if got.String() != tt.want || trusted != tt.trusted {
				t.Errorf("ClientIP = %s, %v; want %s, %v", got, trusted, tt.want, tt.trusted)
			}
		})
	}
}

func TestZeroResolverTrustsNobody(t *testing.T) {
	var r clientip.Resolver
	got, trusted := r.ClientIP("127.0.0.1:1", http.Header{"X-Forwarded-For": {"1.2.3.4"}})
	if got.String() != "127.0.0.1" || trusted {
		t.Errorf("got %s %v", got, trusted)
	}
}

func TestNewResolverReportsEveryBadEntry(t *testing.T) {
	_, err := clientip.NewResolver([]string{"10.0.0.0/8", "bogus", "300.1.1.1", "::1"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"bogus", "300.1.1.1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":         "198.51.100.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:198.51.100.7":  "198.51.100.7",
		"fe80::1%eth0":         "fe80::/64",
	} {
		a := netip.MustParseAddr(in).Unmap()
		if got := clientip.Key(a); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
	if got := clientip.Key(netip.Addr{}); got != "unknown" {
		t.Errorf("Key(zero) = %s", got)
	}
}

func BenchmarkClientIP(b *testing.B) {
	r, _ := clientip.NewResolver([]string{"10.0.0.0/8", "172.16.0.0/12", "fd00::/8"})
	h := http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7, 10.0.0.9, 172.16.0.3"}}
	b.ReportAllocs()
	for b.Loop() {
		a, _ := r.ClientIP("10.0.0.5:4711", h)
		_ = clientip.Key(a)
	}
}

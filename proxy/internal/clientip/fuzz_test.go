package clientip_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"gatehouse.dev/proxy/internal/clientip"
)

// FuzzClientIP checks ClientIP against a plain reading of its contract (SPEC,
// proxy: client IP): an untrusted peer is the client whatever the headers
// say; behind a trusted peer the client is the right-most X-Forwarded-For
// entry that is not a trusted proxy, an unparsable entry stops the walk, and
// the answer is never an address the request did not carry. Key never
// panics and buckets IPv6 by /64.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][3]string{
		{"203.0.113.7:5555", "10.0.0.1", ""},
		{"127.0.0.1:1", "198.51.100.1, 10.0.0.2", ""},
		{"127.0.0.1:1", "1.1.1.1, 2.2.2.2", "10.1.1.1"},
		{"10.0.0.1:80", "[2001:db8::1]:443, fd00::1", ""},
		{"[::ffff:127.0.0.1]:9", "::ffff:10.0.0.9, 192.0.2.1", ""},
		{"127.0.0.1:1", "unknown, 10.0.0.3", ""},
		{"127.0.0.1:1", ",,, ,", "10.0.0.1,"},
		{"[fd00::5]:1", "2001:db8:1:2:3:4:5:6%eth0", ""},
		{"garbage", "1.2.3.4", ""},
		{"127.0.0.1:1", "127.0.0.1, 10.0.0.1", "fd00::1"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	r, err := clientip.NewResolver([]string{"127.0.0.0/8", "10.0.0.0/8", "fd00::/8", "::ffff:192.168.0.0/112"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string) {
		h := http.Header{}
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				h.Add("X-Forwarded-For", v)
			}
		}
		got, trusted := r.ClientIP(remote, h)
		peer := clientip.Peer(remote)
		want, wantTrusted := reference(r, peer, h.Values("X-Forwarded-For"))
		if got != want || trusted != wantTrusted {
			t.Fatalf("ClientIP(%q, %q) = %v, %v; want %v, %v", remote, h.Values("X-Forwarded-For"), got, trusted, want, wantTrusted)
		}
		if got.Is4In6() {
			t.Fatalf("client %v not unmapped", got)
		}
		k := clientip.Key(got)
		switch {
		case !got.IsValid() && k != "unknown":
			t.Fatalf("Key(invalid) = %q", k)
		case got.Is6() && !strings.HasSuffix(k, "/64"):
			t.Fatalf("Key(%v) = %q, want a /64", got, k)
		}
	})
}

// reference is the SPEC's rule written out the slow way.
func reference(r *clientip.Resolver, peer netip.Addr, lines []string) (netip.Addr, bool) {
	if !r.Trusted(peer) {
		return peer, false
	}
	var entries []string
	for _, l := range lines {
		entries = append(entries, strings.Split(l, ",")...)
	}
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parse(entries[i])
		if !ok {
			return client, true
		}
		client = a
		if !r.Trusted(a) {
			break
		}
	}
	return client, true
}

func parse(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

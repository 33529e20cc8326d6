// Package clientip decides which address a request comes from: the TCP peer,
// unless the peer is a trusted proxy, in which case the right-most
// X-Forwarded-For entry that is not itself a trusted proxy (SPEC). Entries to
// the left of that one were written by the client and are never believed.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero value trusts no proxy: the
// client is always the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver trusts the given CIDRs or single addresses (e.g. "10.0.0.0/8",
// "127.0.0.1", "fd00::/8"). Every unparsable entry is reported.
func NewResolver(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	var errs []error
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not a CIDR or IP address", s))
			continue
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, errors.Join(errs...)
}

// Trusted reports whether a is a trusted proxy.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Peer parses an http.Request RemoteAddr ("ip:port"); invalid yields the
// zero Addr.
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// ClientIP returns the client address for a request from remoteAddr with
// headers h, and whether the TCP peer is a trusted proxy. Every
// X-Forwarded-For header line counts, in order. Walking from the right, each
// trusted entry is skipped; the first untrusted one is the client. An
// unparsable entry stops the walk: the last trusted hop is then the best
// answer, since anything further left is unverifiable. If every entry is
// trusted, the left-most one is used.
func (r *Resolver) ClientIP(remoteAddr string, h http.Header) (client netip.Addr, peerTrusted bool) {
	peer := Peer(remoteAddr)
	if !r.Trusted(peer) {
		return peer, false
	}
	client = peer
	xff := h.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			a, ok := parseEntry(entry)
			if !ok {
				return client, true
			}
			client = a
			if !r.Trusted(a) {
				return client, true
			}
		}
	}
	return client, true
}

// parseEntry parses one X-Forwarded-For element: an IP, optionally with a
// port or in brackets ("[2001:db8::1]:443").
func parseEntry(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Key is the rate-limit bucket for a: the address itself for IPv4, its /64
// for IPv6 (one subscriber usually holds a whole /64), "unknown" when a is
// invalid.
func Key(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

package redisx_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/redisx"
)

func TestClientIP(t *testing.T) {
	gateway := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for name, tc := range map[string]struct {
		remote  string
		xff     []string
		hops    int
		trusted []netip.Prefix
		want    string
	}{
		"no forwarding":                   {remote: "203.0.113.7:5555", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		"one proxy":                       {remote: "10.1.2.3:5555", xff: []string{"198.51.100.1"}, hops: 1, want: "198.51.100.1"},
		"a spoofed entry on the left":     {remote: "10.1.2.3:5555", xff: []string{"1.1.1.1, 198.51.100.1"}, hops: 1, want: "198.51.100.1"},
		"two proxies":                     {remote: "10.1.2.3:5555", xff: []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, hops: 2, want: "198.51.100.1"},
		"headers are joined":              {remote: "10.1.2.3:5555", xff: []string{"1.1.1.1", "198.51.100.1"}, hops: 1, want: "198.51.100.1"},
		"from a trusted proxy":            {remote: "10.1.2.3:5555", xff: []string{"198.51.100.1"}, hops: 1, trusted: gateway, want: "198.51.100.1"},
		"from anyone else":                {remote: "203.0.113.7:5555", xff: []string{"198.51.100.1"}, hops: 1, trusted: gateway, want: "203.0.113.7"},
		"no header":                       {remote: "10.1.2.3:5555", hops: 1, want: "10.1.2.3"},
		"fewer entries than proxies":      {remote: "10.1.2.3:5555", xff: []string{"198.51.100.1"}, hops: 2, want: "10.1.2.3"},
		"garbage":                         {remote: "10.1.2.3:5555", xff: []string{"<script>"}, hops: 1, want: "10.1.2.3"},
		"IPv6 remote":                     {remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		"IPv4-mapped IPv6":                {remote: "[::ffff:192.0.2.9]:443", want: "192.0.2.9"},
		"an entry with a port":            {remote: "10.1.2.3:5555", xff: []string{"[2001:db8::5]:1234"}, hops: 1, want: "2001:db8::5"},
		"unparsable remote is kept as is": {remote: "pipe", want: "pipe"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := redisx.ClientIP(r, tc.hops, tc.trusted); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBucketKey(t *testing.T) {
	for ip, want := range map[string]string{
		"198.51.100.1":           "198.51.100.1",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::":    "2001:db8:1:2::/64",
		"not an address at all!": "not an address at all!",
	} {
		if got := redisx.BucketKey(ip); got != want {
			t.Errorf("BucketKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

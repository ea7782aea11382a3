package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DNSResult is what one name resolved to. NotFound says the resolver got a
// definite "no such name" answer (NXDOMAIN), as opposed to a timeout, a
// refused query or a server failure.
type DNSResult struct {
	Name     string   `json:"name"`
	Addrs    []string `json:"addrs,omitempty"`
	Error    string   `json:"error,omitempty"`
	NotFound bool     `json:"not_found,omitempty"`
	MS       int64    `json:"ms"`
}

func runDNS(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "per name")
	names, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 || len(names) > 64 {
		return nil, errors.New("want 1 to 64 names")
	}
	out := struct {
		Results []DNSResult `json:"results"`
	}{}
	for _, n := range names {
		out.Results = append(out.Results, lookup(n, *timeout))
	}
	return out, nil
}

// lookup resolves one name within timeout.
func lookup(name string, timeout time.Duration) DNSResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	r := DNSResult{Name: name, Addrs: addrs, MS: ms(time.Since(start))}
	if err != nil {
		r.Error = err.Error()
		var de *net.DNSError
		r.NotFound = errors.As(err, &de) && de.IsNotFound
	}
	return r
}

// Kinds of failed connection attempts.
const (
	kindDNS         = "dns"         // the name did not resolve: nothing was dialled
	kindRefused     = "refused"     // RST or ICMP port unreachable (a REJECT rule, or no endpoint)
	kindTimeout     = "timeout"     // no answer at all (a DROP rule, or nothing there)
	kindUnreachable = "unreachable" // ICMP host/network unreachable or administratively prohibited
	kindOther       = "other"
)

// classifyDial names the kind of a dial error.
func classifyDial(err error) string {
	var de *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &de):
		return kindDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return kindUnreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	}
	return kindOther
}

// TCPResult counts connection attempts to one address. The host is resolved
// first (again at each attempt until it resolves); Resolved is the address
// dialled, and every failed attempt has its kind in Kinds (kindDNS when the
// name did not resolve, so nothing was dialled).
type TCPResult struct {
	Addr      string   `json:"addr"`
	Resolved  string   `json:"resolved,omitempty"`
	DNSError  string   `json:"dns_error,omitempty"`
	Attempts  int      `json:"attempts"`
	Connected int      `json:"connected"`
	Errors    []string `json:"errors,omitempty"`
	Kinds     []string `json:"kinds,omitempty"`
	MS        []int64  `json:"ms"`
}

func runTCP(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	attempts := fs.Int("attempts", 3, "connection attempts (1 to 60)")
	timeout := fs.Duration("timeout", 2*time.Second, "per attempt (the name's resolution and the dial each)")
	interval := fs.Duration("interval", time.Second, "between attempts")
	until := fs.Bool("until-connected", false, "stop at the first connection")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(rest) != 1 {
		return nil, errors.New("want one host:port")
	}
	if *attempts < 1 || *attempts > 60 {
		return nil, errors.New("-attempts must be between 1 and 60")
	}
	host, port, err := net.SplitHostPort(rest[0])
	if err != nil {
		return nil, err
	}
	return dialAttempts(host, port, *attempts, *timeout, *interval, *until), nil
}

// dialAttempts resolves host (until it resolves) and dials the first address
// it resolved to, attempts times at most.
func dialAttempts(host, port string, attempts int, timeout, interval time.Duration, until bool) TCPResult {
	res := TCPResult{Addr: net.JoinHostPort(host, port), MS: []int64{}}
	fail := func(kind string, err error) {
		res.Kinds = append(res.Kinds, kind)
		res.Errors = append(res.Errors, err.Error())
	}
	for i := range attempts {
		if i > 0 {
			time.Sleep(interval)
		}
		start := time.Now()
		res.Attempts++
		if res.Resolved == "" {
			r := lookup(host, timeout)
			if r.Error != "" || len(r.Addrs) == 0 {
				res.DNSError = r.Error
				if r.Error == "" {
					res.DNSError = "no address"
				}
				res.MS = append(res.MS, ms(time.Since(start)))
				fail(kindDNS, fmt.Errorf("resolving %s: %s", host, res.DNSError))
				continue
			}
			res.Resolved, res.DNSError = net.JoinHostPort(r.Addrs[0], port), ""
		}
		c, err := net.DialTimeout("tcp", res.Resolved, timeout)
		res.MS = append(res.MS, ms(time.Since(start)))
		if err != nil {
			fail(classifyDial(err), err)
			continue
		}
		_ = c.Close()
		res.Connected++
		if until {
			break
		}
	}
	return res
}

// Route is one entry of the pod's routing table.
type Route struct {
	Iface       string `json:"iface"`
	Destination string `json:"destination"` // a prefix, e.g. 10.244.0.0/16 or ::/0
	Gateway     string `json:"gateway,omitempty"`
	Reject      bool   `json:"reject,omitempty"` // an unreachable/prohibit route: it carries nothing
}

// RoutesResult lists the routes and those that lead outside the allowed ranges.
type RoutesResult struct {
	Allowed    []string `json:"allowed"`
	Routes     []Route  `json:"routes"`
	Violations []Route  `json:"violations"`
	Error      string   `json:"error,omitempty"`
}

func runRoutes(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	allowedFlag := fs.String("allowed", "10.244.0.0/16,10.96.0.0/16", "comma-separated prefixes a route may lead to")
	if _, err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	allowed, err := parsePrefixes(*allowedFlag)
	if err != nil {
		return nil, err
	}
	res := RoutesResult{Allowed: strings.Split(*allowedFlag, ","), Routes: []Route{}, Violations: []Route{}}
	var errs []string
	if f, err := os.Open("/proc/net/route"); err != nil {
		errs = append(errs, err.Error())
	} else {
		r, err := parseIPv4Routes(f)
		_ = f.Close()
		if err != nil {
			errs = append(errs, err.Error())
		}
		res.Routes = append(res.Routes, r...)
	}
	// IPv6 may be off in the pod; a missing file is not an error.
	if f, err := os.Open("/proc/net/ipv6_route"); err == nil {
		r, err := parseIPv6Routes(f)
		_ = f.Close()
		if err != nil {
			errs = append(errs, err.Error())
		}
		res.Routes = append(res.Routes, r...)
	}
	res.Violations = violations(res.Routes, allowed)
	res.Error = strings.Join(errs, "; ")
	return res, nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("allowed range %q: %w", p, err)
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// parseIPv4Routes reads /proc/net/route: addresses and masks are
// little-endian hexadecimal.
func parseIPv4Routes(r io.Reader) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := leIPv4(f[1])
		gw, err2 := leIPv4(f[2])
		mask, err3 := leIPv4(f[7])
		flags, err4 := strconv.ParseUint(f[3], 16, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return out, fmt.Errorf("/proc/net/route line %q: %w", sc.Text(), err)
		}
		ones, _ := net.IPMask(mask.AsSlice()).Size()
		rt := Route{Iface: f[0], Destination: netip.PrefixFrom(dst, ones).Masked().String(), Reject: flags&rtfReject != 0}
		if !gw.IsUnspecified() {
			rt.Gateway = gw.String()
		}
		out = append(out, rt)
	}
	return out, sc.Err()
}

// Route flags: RTF_REJECT refuses traffic instead of carrying it; RTF_LOCAL
// (IPv6) marks an address of the pod itself.
const (
	rtfReject = 0x0200
	rtfLocal  = 0x80000000
)

func leIPv4(h string) (netip.Addr, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", h)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

// parseIPv6Routes reads /proc/net/ipv6_route (every table, local included).
// Link-local, multicast, loopback and the addresses of the pod itself (local
// routes) are not ways out and are left out.
func parseIPv6Routes(r io.Reader) ([]Route, error) {
	var out []Route
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		dstB, err1 := hex.DecodeString(f[0])
		plen, err2 := strconv.ParseUint(f[1], 16, 8)
		gwB, err3 := hex.DecodeString(f[4])
		flags, err4 := strconv.ParseUint(f[8], 16, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil || len(dstB) != 16 || len(gwB) != 16 {
			return out, fmt.Errorf("/proc/net/ipv6_route line %q: bad fields", sc.Text())
		}
		dst := netip.AddrFrom16([16]byte(dstB))
		gw := netip.AddrFrom16([16]byte(gwB))
		iface := f[9]
		reject := flags&rtfReject != 0
		if !reject && (flags&rtfLocal != 0 || dst.IsLinkLocalUnicast() || dst.IsMulticast() || dst.IsLoopback()) {
			continue
		}
		rt := Route{Iface: iface, Destination: netip.PrefixFrom(dst, int(plen)).Masked().String(), Reject: reject}
		if !gw.IsUnspecified() {
			rt.Gateway = gw.String()
		}
		out = append(out, rt)
	}
	return out, sc.Err()
}

// violations are the routes that carry traffic to an address outside every
// allowed range: a default route, or any prefix not inside one of them.
func violations(routes []Route, allowed []netip.Prefix) []Route {
	out := []Route{}
	for _, r := range routes {
		if r.Reject {
			continue
		}
		p, err := netip.ParsePrefix(r.Destination)
		if err != nil || !insideAny(p, allowed) {
			out = append(out, r)
		}
	}
	return out
}

func insideAny(p netip.Prefix, allowed []netip.Prefix) bool {
	for _, a := range allowed {
		if a.Addr().Is4() == p.Addr().Is4() && p.Bits() >= a.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

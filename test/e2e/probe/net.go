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
	"time"
)

// DNSResult is what one name resolved to.
type DNSResult struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs,omitempty"`
	Error string   `json:"error,omitempty"`
	MS    int64    `json:"ms"`
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
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, n)
		cancel()
		r := DNSResult{Name: n, Addrs: addrs, MS: ms(time.Since(start))}
		if err != nil {
			r.Error = err.Error()
		}
		out.Results = append(out.Results, r)
	}
	return out, nil
}

// TCPResult counts connection attempts to one address.
type TCPResult struct {
	Addr      string   `json:"addr"`
	Attempts  int      `json:"attempts"`
	Connected int      `json:"connected"`
	Errors    []string `json:"errors,omitempty"`
	MS        []int64  `json:"ms"`
}

func runTCP(args []string, _ io.Writer) (any, error) {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	attempts := fs.Int("attempts", 3, "connection attempts (1 to 60)")
	timeout := fs.Duration("timeout", 2*time.Second, "per attempt")
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
	res := TCPResult{Addr: rest[0], MS: []int64{}}
	for i := range *attempts {
		if i > 0 {
			time.Sleep(*interval)
		}
		start := time.Now()
		c, err := net.DialTimeout("tcp", rest[0], *timeout)
		res.Attempts++
		res.MS = append(res.MS, ms(time.Since(start)))
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		_ = c.Close()
		res.Connected++
		if *until {
			break
		}
	}
	return res, nil
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

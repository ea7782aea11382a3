// Command dnscheck asks one DNS server for the addresses of a name and
// prints them; it exits 1 when the server does not answer with an address.
// The local cluster's scripts use it to see that CoreDNS serves cluster.local
// and answers anything else itself at once.
//
//	dnscheck -server 10.96.0.10:53 kubernetes.default.svc.cluster.local
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	server := flag.String("server", "10.96.0.10:53", "DNS server, host:port")
	timeout := flag.Duration("timeout", 3*time.Second, "time allowed for the answer")
	tcp := flag.Bool("tcp", false, "ask over TCP instead of UDP")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: dnscheck [-server host:port] [-tcp] name")
		os.Exit(2)
	}
	network := "udp"
	if *tcp {
		network = "tcp"
	}
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *server)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	addrs, err := r.LookupHost(ctx, flag.Arg(0))
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Printf("%s: %v (%s)\n", flag.Arg(0), err, took)
		os.Exit(1)
	}
	fmt.Printf("%s: %s (%s)\n", flag.Arg(0), strings.Join(addrs, " "), took)
}

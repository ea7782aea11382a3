// Command probe is the end-to-end suite's helper inside the cluster. The suite
// runs it in pods that carry the labels, certificates and namespaces of the
// identities it wants to test (the gateway, a service, an unlabelled pod, a
// monitoring namespace) and reads what it saw:
//
//	probe sleep [-for 2h]                 keep the pod running (the suite execs the other commands)
//	probe fail                            exit 1 (a readiness probe that never passes)
//	probe dns [-timeout 2s] NAME...       resolve names (and say whether a failure is NXDOMAIN)
//	probe tcp [-attempts 3 -timeout 2s -interval 1s -until-connected] HOST:PORT
//	                                      resolve HOST, dial the address; each failure's kind
//	                                      (dns, refused, timeout, unreachable, other)
//	probe http [flags] URL                one request (TLS with -ca, client certificate with -cert/-key)
//	probe journey [flags]                 admin adds a product; a customer registers, logs in and orders
//	probe orders [flags]                  log in once, then place a bounded number of orders
//	probe load [flags] URL                bounded load: requests for a duration at a rate
//	probe routes [-allowed CIDR,...]      the pod's routing table and the routes outside the allowed ranges
//
// Every command but sleep and fail prints one JSON line on stdout and exits 0
// once it ran, whatever it found: the suite decides what passes. (load also
// prints a progress line every -progress interval; its last line is the
// summary.) Bad arguments exit 2. Every loop is bounded in count and time.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands maps a subcommand to its implementation; each returns the value
// to print as JSON.
var commands = map[string]func(args []string, out io.Writer) (any, error){
	"dns":     runDNS,
	"tcp":     runTCP,
	"http":    runHTTP,
	"journey": runJourney,
	"orders":  runOrders,
	"load":    runLoad,
	"routes":  runRoutes,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: probe sleep|fail|dns|tcp|http|journey|orders|load|routes [flags] [args]")
		return 2
	}
	switch args[0] {
	case "sleep":
		return runSleep(args[1:], stderr)
	case "fail":
		return 1
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "probe: unknown command %q\n", args[0])
		return 2
	}
	res, err := cmd(args[1:], stdout)
	if err != nil {
		fmt.Fprintf(stderr, "probe %s: %v\n", args[0], err)
		return 2
	}
	if err := writeJSON(stdout, res); err != nil {
		fmt.Fprintf(stderr, "probe %s: %v\n", args[0], err)
		return 2
	}
	return 0
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// runSleep keeps a probe pod alive for the suite's exec calls, bounded, and
// exits at once on SIGTERM (as PID 1 nothing else would stop it).
func runSleep(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sleep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := fs.Duration("for", 2*time.Hour, "how long to stay up")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*d):
	}
	return 0
}

// parseFlags parses args and returns the positional arguments; -h is an error.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errors.New("see the package documentation for the flags")
		}
		return nil, err
	}
	return fs.Args(), nil
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// ms is a duration in milliseconds, for the JSON output.
func ms(d time.Duration) int64 { return d.Milliseconds() }

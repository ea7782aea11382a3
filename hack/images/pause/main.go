// Command pause is the process that holds a pod sandbox's namespaces open.
//
// It runs as PID 1 of the sandbox: it does nothing but wait for SIGINT or
// SIGTERM (and then exits 0), and it reaps every child that is re-parented to
// it when the pod shares its process namespace, so that no zombies pile up.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at link time.
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-v", "--version", "-version":
			fmt.Println("pause", version)
			return
		default:
			fmt.Fprintln(os.Stderr, "usage: pause [-v]")
			os.Exit(1)
		}
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1; orphaned processes will not be reaped here")
	}

	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// A child may have exited before Notify took effect.
	reap()
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: shutting down on %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

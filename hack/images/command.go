package main

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// Bounds on the external commands images runs: a stalled mirror, package
// script or containerd must end the build with an error, not hang it.
const (
	debootstrapTimeout = 30 * time.Minute
	installTimeout     = 20 * time.Minute
	shortTimeout       = 5 * time.Minute // ctr imports, mounts, files written through chroot
	goBuildTimeout     = 20 * time.Minute
)

// bounded is exec.Command that is killed, with every process it started, when
// timeout passes. The caller must call the returned cancel once the command
// has finished.
func bounded(timeout time.Duration, name string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, name, args...)
	// Its own process group, so the whole group goes: debootstrap and
	// apt-get run children that would otherwise outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd, cancel
}

// Command images builds the container images the local cluster runs, without
// a Docker engine or a registry: each image is written as a docker-archive
// tarball that `ctr images import` accepts, and -import loads them into
// containerd's k8s.io namespace.
//
//	go run ./hack/images [flags] [pause|coredns|operator|services|probe|postgres|redis ...]
//
// See hack/images/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// allTargets in build order: pause and coredns first, the cluster needs them
// before anything else; the probe last, its package is optional.
var allTargets = []string{"pause", "coredns", "operator", "services", "postgres", "redis", "probe"}

// errSkipped marks a target that was left out rather than failed.
var errSkipped = errors.New("skipped")

type builder struct {
	root        string // the root module's directory
	out         string // where tarballs are written
	cache       string // where the Debian root filesystems are kept
	version     string
	alsoTags    []string
	explicit    bool // targets were named on the command line
	ctrAddress  string
	snapshotter string
	written     []string // tarballs to import
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run() error {
	cacheHome := os.Getenv("XDG_CACHE_HOME")
	if cacheHome == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		cacheHome = filepath.Join(home, ".cache")
	}
	ctrDefault := os.Getenv("CONTAINERD_ADDRESS")
	if ctrDefault == "" {
		ctrDefault = "/var/lib/shopstack-cluster/containerd/containerd.sock"
	}
	b := &builder{}
	var alsoTags string
	var doImport bool
	flag.StringVar(&b.out, "out", filepath.Join(cacheHome, "shopstack", "images"), "directory the image tarballs are written to")
	flag.StringVar(&b.cache, "cache", filepath.Join(cacheHome, "shopstack", "rootfs"), "directory the Debian base root filesystems are kept in")
	flag.StringVar(&b.version, "version", "0.1.0", "tag of the operator and service images (also their main.version)")
	flag.StringVar(&alsoTags, "also-tag", "", "comma-separated extra tags of the service images, each built with its own main.version")
	flag.BoolVar(&doImport, "import", false, "import every tarball into containerd's k8s.io namespace with ctr")
	flag.StringVar(&b.ctrAddress, "containerd-address", ctrDefault, "containerd socket used by -import")
	flag.StringVar(&b.snapshotter, "snapshotter", "", "snapshotter -import unpacks into (empty: ctr's default)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./hack/images [flags] [%s ...]\n", strings.Join(allTargets, "|"))
		flag.PrintDefaults()
	}
	flag.Parse()
	for _, t := range strings.Split(alsoTags, ",") {
		if t = strings.TrimSpace(t); t != "" && t != b.version && !slices.Contains(b.alsoTags, t) {
			b.alsoTags = append(b.alsoTags, t)
		}
	}
	targets := flag.Args()
	b.explicit = len(targets) > 0
	if !b.explicit {
		targets = allTargets
	}
	for _, t := range targets {
		if !slices.Contains(allTargets, t) {
			return fmt.Errorf("unknown target %q (want one of %s)", t, strings.Join(allTargets, ", "))
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.root = root
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}

	start := time.Now()
	for _, t := range targets {
		t0 := time.Now()
		var err error
		switch t {
		case "pause":
			err = b.pause()
		case "coredns":
			err = b.coredns()
		case "operator":
			err = b.operator()
		case "services":
			err = b.services()
		case "probe":
			err = b.probe()
		case "postgres":
			err = b.postgres()
		case "redis":
			err = b.redis()
		}
		switch {
		case errors.Is(err, errSkipped):
			fmt.Printf("%-9s skipped: %v\n", t, err)
		case err != nil:
			return fmt.Errorf("%s: %w", t, err)
		default:
			fmt.Printf("%-9s done in %s\n", t, since(t0))
		}
	}
	fmt.Printf("built in %s; tarballs in %s\n", since(start), b.out)

	if doImport {
		t0 := time.Now()
		for _, f := range b.written {
			if err := b.importTarball(f); err != nil {
				return err
			}
		}
		fmt.Printf("imported %d tarballs into %s (namespace k8s.io) in %s\n", len(b.written), b.ctrAddress, since(t0))
	}
	return nil
}

func (b *builder) importTarball(file string) error {
	args := []string{"-a", b.ctrAddress, "-n", "k8s.io", "images", "import"}
	if b.snapshotter != "" {
		args = append(args, "--snapshotter", b.snapshotter)
	}
	args = append(args, file)
	cmd, cancel := bounded(shortTimeout, "ctr", args...)
	defer cancel()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Printf("importing %s\n", file)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ctr %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// moduleRoot finds the root module's directory from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/shopstack/shopstack\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the github.com/shopstack/shopstack checkout")
		}
		dir = parent
	}
}

func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

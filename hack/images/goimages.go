package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	pauseRef     = "shopstack.local/pause:3.10"
	operatorRepo = "ghcr.io/shopstack/shopstack-operator"
	serviceRepo  = "ghcr.io/shopstack/shopstack-" // + service name
	probeRef     = "shopstack.local/e2e-probe:dev"
	corednsRepo  = "shopstack.local/coredns" // tagged with the version hack/tools/coredns pins
	probePackage = "./test/e2e/probe"
	nonroot      = 65532
)

var serviceNames = []string{"user", "order", "payment", "inventory"}

// baseLayer is what the Go images share with distroless/static:nonroot that
// the binaries may need: the users root, nobody and nonroot (65532), their
// homes, and a world-writable /tmp.
func baseLayer() (v1.Layer, error) {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
	return memLayer([]entry{
		dirEntry("/etc", 0o755, 0, 0),
		fileEntry("/etc/group", 0o644, []byte(group)),
		fileEntry("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n")),
		fileEntry("/etc/passwd", 0o644, []byte(passwd)),
		dirEntry("/home", 0o755, 0, 0),
		dirEntry("/home/nonroot", 0o700, nonroot, nonroot),
		dirEntry("/root", 0o700, 0, 0),
		dirEntry("/tmp", 0o1777, 0, 0),
	})
}

// goBuild builds a static linux binary of pkg in the module at dir and
// returns its contents.
func goBuild(dir, pkg, version string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "shopstack-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	cmd, cancel := bounded(goBuildTimeout, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, pkg)
	defer cancel()
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s in %s: %w", pkg, dir, err)
	}
	return os.ReadFile(bin)
}

// goImage is one static binary at path on the base layer.
func goImage(bin []byte, path string, cfg v1.Config) (v1.Image, error) {
	base, err := baseLayer()
	if err != nil {
		return nil, err
	}
	app, err := memLayer([]entry{fileEntry(path, 0o755, bin)})
	if err != nil {
		return nil, err
	}
	return newImage(epoch, cfg,
		layerSpec{base, "users root, nobody and nonroot (65532); /tmp"},
		layerSpec{app, "static binary " + path})
}

func labels(title, version string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":   title,
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/shopstack/shopstack",
	}
}

func (b *builder) pause() error {
	bin, err := goBuild(b.root, "./hack/images/pause", "3.10")
	if err != nil {
		return err
	}
	app, err := memLayer([]entry{fileEntry("/pause", 0o755, bin)})
	if err != nil {
		return err
	}
	// Like registry.k8s.io/pause: nothing but the binary, as user 65535.
	img, err := newImage(epoch, v1.Config{
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		Env:        []string{defaultPath},
		WorkingDir: "/",
		Labels:     labels("pause", "3.10"),
	}, layerSpec{app, "static binary /pause"})
	if err != nil {
		return err
	}
	if err := b.writeArchive("pause.tar", map[string]v1.Image{pauseRef: img}); err != nil {
		return err
	}
	return nil
}

func (b *builder) operator() error {
	bin, err := goBuild(b.root, "./cmd", b.version)
	if err != nil {
		return err
	}
	img, err := goImage(bin, "/manager", v1.Config{
		Entrypoint: []string{"/manager"},
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:        []string{defaultPath},
		WorkingDir: "/",
		Labels:     labels("shopstack-operator", b.version),
	})
	if err != nil {
		return err
	}
	if err := b.writeArchive("operator.tar", map[string]v1.Image{operatorRepo + ":" + b.version: img}); err != nil {
		return err
	}
	return nil
}

// services writes one tarball per service holding every tag; each tag is
// its own build, since the tag is linked into the binary as main.version.
func (b *builder) services() error {
	tags := append([]string{b.version}, b.alsoTags...)
	apps := filepath.Join(b.root, "apps")
	for _, svc := range serviceNames {
		t0 := time.Now()
		images := map[string]v1.Image{}
		for _, tag := range tags {
			bin, err := goBuild(apps, "./"+svc+"/cmd/"+svc, tag)
			if err != nil {
				return err
			}
			img, err := goImage(bin, "/service", v1.Config{
				Entrypoint: []string{"/service"},
				User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
				Env:        []string{defaultPath},
				WorkingDir: "/",
				// public, internal, ops
				ExposedPorts: map[string]struct{}{"8443/tcp": {}, "9443/tcp": {}, "8081/tcp": {}},
				Labels:       labels("shopstack-"+svc, tag),
			})
			if err != nil {
				return err
			}
			images[serviceRepo+svc+":"+tag] = img
		}
		if err := b.writeArchive(svc+".tar", images); err != nil {
			return err
		}
		fmt.Printf("  %s built in %s\n", svc, since(t0))
	}
	return nil
}

// probe is the end-to-end suite's in-cluster helper. It is skipped when the
// package does not exist and the target was not asked for by name.
func (b *builder) probe() error {
	matches, _ := filepath.Glob(filepath.Join(b.root, filepath.FromSlash(probePackage), "*.go"))
	hasMain := false
	for _, m := range matches {
		if !strings.HasSuffix(m, "_test.go") {
			hasMain = true
		}
	}
	if !hasMain {
		err := fmt.Errorf("no Go package at %s", probePackage)
		if b.explicit {
			return err
		}
		return fmt.Errorf("%w: %v", errSkipped, err)
	}
	bin, err := goBuild(b.root, probePackage, "dev")
	if err != nil {
		return err
	}
	img, err := goImage(bin, "/probe", v1.Config{
		Entrypoint: []string{"/probe"},
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:        []string{defaultPath},
		WorkingDir: "/",
		Labels:     labels("shopstack-e2e-probe", "dev"),
	})
	if err != nil {
		return err
	}
	if err := b.writeArchive("probe.tar", map[string]v1.Image{probeRef: img}); err != nil {
		return err
	}
	return nil
}

// coredns is the local cluster's DNS server, built from the module that
// hack/tools/coredns pins, as a pod on the pod network like kubeadm's: the
// Shops' NetworkPolicies admit DNS to pods labelled k8s-app=kube-dns in
// kube-system, not to an address on the host.
func (b *builder) coredns() error {
	dir := filepath.Join(b.root, "hack", "tools", "coredns")
	version, err := requiredVersion(filepath.Join(dir, "go.mod"), "github.com/coredns/coredns")
	if err != nil {
		return err
	}
	bin, err := goBuild(dir, "github.com/coredns/coredns", version)
	if err != nil {
		return err
	}
	img, err := goImage(bin, "/coredns", v1.Config{
		Entrypoint:   []string{"/coredns"},
		User:         fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:          []string{defaultPath},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"53/udp": {}, "53/tcp": {}},
		Labels:       labels("coredns", version),
	})
	if err != nil {
		return err
	}
	return b.writeArchive("coredns.tar", map[string]v1.Image{corednsRepo + ":" + version: img})
}

// requiredVersion reads the version of module from the require lines of a go.mod.
func requiredVersion(gomod, module string) (string, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The data images are Debian bookworm with Debian's own postgresql-15 and
// redis packages, laid out like the Docker Official postgres and redis images
// (same users and IDs, paths, entrypoint contract) so that one pod spec runs
// either.
const (
	suite   = "bookworm"
	variant = "minbase"
	// recipe changes whenever the steps below change in a way the input hash
	// does not see; it invalidates every cached tarball.
	recipe = "data-images/1"
)

//go:embed rootfs/postgres-entrypoint.sh
var postgresEntrypoint []byte

//go:embed rootfs/redis-entrypoint.sh
var redisEntrypoint []byte

// chrootPath is PATH for the commands run inside the root filesystem.
const chrootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dataImage is one image installed from Debian packages.
type dataImage struct {
	name     string // target, tarball and log name
	ref      string
	packages []string // what the install script installs, for the input hash
	install  string   // bash run in the root filesystem: user, packages, layout
	config   v1.Config
}

func postgresImage() dataImage {
	return dataImage{
		name:     "postgres",
		ref:      "shopstack.local/postgres:15-bookworm",
		packages: []string{"postgresql-common", "postgresql-15"},
		// The user comes first so that the packages find it and its IDs are
		// those of the official image. The packages must not create a cluster:
		// the entrypoint creates one in $PGDATA.
		install: `
groupadd --system --gid 999 postgres
useradd --system --gid postgres --uid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres
install -d -o postgres -g postgres -m 0755 /var/lib/postgresql
apt-get install -y --no-install-recommends postgresql-common
sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
grep -qx 'create_main_cluster = false' /etc/postgresql-common/createcluster.conf
apt-get install -y --no-install-recommends postgresql-15
test -x /usr/lib/postgresql/15/bin/postgres
test ! -e /etc/postgresql/15/main
install -d -o postgres -g postgres -m 3777 /var/run/postgresql
install -d -o postgres -g postgres -m 0777 /var/lib/postgresql/data
install -d -m 0755 /docker-entrypoint-initdb.d
`,
		config: v1.Config{
			Entrypoint: []string{"docker-entrypoint.sh"},
			Cmd:        []string{"postgres"},
			// Numeric, so that the kubelet can enforce runAsNonRoot.
			User: "999:999",
			Env: []string{
				"PATH=/usr/lib/postgresql/15/bin:" + chrootPath,
				"PG_MAJOR=15",
				"PGDATA=/var/lib/postgresql/data",
				"LANG=C.UTF-8",
			},
			ExposedPorts: map[string]struct{}{"5432/tcp": {}},
			StopSignal:   "SIGINT",
			WorkingDir:   "/",
			Labels:       labels("postgres", "15-bookworm"),
		},
	}
}

func redisImage() dataImage {
	return dataImage{
		name:     "redis",
		ref:      "shopstack.local/redis:7.0-bookworm",
		packages: []string{"redis-server", "redis-sentinel"},
		install: `
groupadd --system --gid 999 redis
useradd --system --gid redis --uid 999 --home-dir /var/lib/redis --no-create-home --shell /usr/sbin/nologin redis
apt-get install -y --no-install-recommends redis-server redis-sentinel
test -x /usr/bin/redis-server
test -x /usr/bin/redis-sentinel
install -d -o redis -g redis -m 0755 /data
`,
		config: v1.Config{
			Entrypoint:   []string{"docker-entrypoint.sh"},
			Cmd:          []string{"redis-server"},
			User:         "999:999",
			Env:          []string{"PATH=" + chrootPath, "LANG=C.UTF-8"},
			ExposedPorts: map[string]struct{}{"6379/tcp": {}},
			WorkingDir:   "/data",
			Labels:       labels("redis", "7.0-bookworm"),
		},
	}
}

// commonSetup runs before an image's install script: no service may start,
// and the package lists are fresh.
const commonSetup = `
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
rm -f /etc/apt/sources.list
apt-get update
`

// commonCleanup runs after: it drops what a container does not need
// (package lists and caches, documentation but for the copyright files,
// manuals, translations, logs) and the build machine's resolver, name and
// package sources.
const commonCleanup = `
ln -sf usr/local/bin/docker-entrypoint.sh /docker-entrypoint.sh
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
  /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian /usr/share/linda \
  /var/log/apt/* /var/log/*.log /tmp/* /var/tmp/* /root/.cache /usr/sbin/policy-rc.d
find /usr/share/doc -depth -type f ! -name copyright -delete
find /usr/share/doc -depth -mindepth 1 -type d -empty -delete
rm -f /run/adduser /etc/apt/sources.list.d/debian.sources
: > /etc/resolv.conf
echo localhost > /etc/hostname
`

func (b *builder) postgres() error { return b.dataImage(postgresImage(), postgresEntrypoint) }
func (b *builder) redis() error    { return b.dataImage(redisImage(), redisEntrypoint) }

func (b *builder) dataImage(img dataImage, entrypoint []byte) error {
	if os.Geteuid() != 0 {
		return errors.New("debootstrap and chroot need root")
	}
	src, err := aptSources()
	if err != nil {
		return err
	}
	cfgJSON, err := json.Marshal(img.config)
	if err != nil {
		return err
	}
	inputs := hashOf(recipe, suite, variant, runtime.GOARCH, src.mirror, src.chrootSources(),
		img.ref, strings.Join(img.packages, " "), commonSetup, img.install, commonCleanup,
		string(entrypoint), string(cfgJSON))
	tarPath := filepath.Join(b.out, img.name+".tar")
	sidecar := tarPath + ".inputs"
	if old, err := os.ReadFile(sidecar); err == nil && strings.TrimSpace(string(old)) == inputs {
		if _, err := os.Stat(tarPath); err == nil {
			b.noteWritten(tarPath, []string{img.ref}, "(up to date)")
			return nil
		}
	}

	base, err := b.baseRootfs(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.cache, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(b.cache, "work-"+img.name+"-")
	if err != nil {
		return err
	}
	defer removeTree(work)
	t0 := time.Now()
	if err := runCmd(nil, "cp", "-a", base+"/.", work+"/"); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(b.cache, img.name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Printf("  installing %s into a copy of the base (log: %s)\n", strings.Join(img.packages, " "), logf.Name())
	if err := installInto(work, logf, src, img, entrypoint); err != nil {
		return err
	}
	fmt.Printf("  installed in %s\n", since(t0))

	t1 := time.Now()
	layerPath := filepath.Join(b.cache, img.name+".layer.tar")
	defer os.Remove(layerPath)
	lf, err := os.Create(layerPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(lf, 1<<20)
	if err := tarTree(work, w, "proc", "sys", "dev"); err != nil {
		lf.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		lf.Close()
		return err
	}
	if err := lf.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromFile(layerPath)
	if err != nil {
		return err
	}
	image, err := newImage(time.Now().UTC().Truncate(time.Second), img.config,
		layerSpec{layer, fmt.Sprintf("debootstrap --variant=%s %s; apt-get install %s", variant, suite, strings.Join(img.packages, " "))})
	if err != nil {
		return err
	}
	os.Remove(sidecar)
	if err := b.writeArchive(img.name+".tar", map[string]v1.Image{img.ref: image}); err != nil {
		return err
	}
	fmt.Printf("  packed in %s\n", since(t1))
	return os.WriteFile(sidecar, []byte(inputs+"\n"), 0o644)
}

// installInto runs the install steps in the root filesystem at dir, with
// /proc mounted for the duration.
func installInto(dir string, log io.Writer, src *sources, img dataImage, entrypoint []byte) error {
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	if err := writeIn(dir, "/etc/resolv.conf", 0o644, resolv); err != nil {
		return err
	}
	if err := writeIn(dir, "/etc/apt/sources.list.d/debian.sources", 0o644, []byte(src.chrootSources())); err != nil {
		return err
	}
	if err := writeIn(dir, "/usr/local/bin/docker-entrypoint.sh", 0o755, entrypoint); err != nil {
		return err
	}
	proc := filepath.Join(dir, "proc")
	if err := runCmd(nil, "mount", "-t", "proc", "proc", proc); err != nil {
		return err
	}
	defer func() {
		if err := runCmd(nil, "umount", proc); err != nil {
			runCmd(nil, "umount", "-l", proc)
		}
	}()
	script := "set -euxo pipefail\n" + commonSetup + img.install + commonCleanup
	cmd, cancel := bounded(installTimeout, "chroot", dir, "/bin/bash", "-c", script)
	defer cancel()
	cmd.Env = []string{"PATH=" + chrootPath, "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("installing %s failed (%w, bound %s); see the log", img.name, err, installTimeout)
	}
	return nil
}

// baseRootfs returns the cached debootstrap of the suite, making it first
// when it is missing. The directory is keyed on everything debootstrap is
// given; a ".ok" file beside it marks it complete.
func (b *builder) baseRootfs(src *sources) (string, error) {
	key := hashOf(recipe, suite, variant, runtime.GOARCH, src.mirror)[:12]
	dir := filepath.Join(b.cache, fmt.Sprintf("debootstrap-%s-%s-%s", suite, variant, key))
	if _, err := os.Stat(dir + ".ok"); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(b.cache, 0o755); err != nil {
		return "", err
	}
	if err := removeTree(dir); err != nil {
		return "", err
	}
	t0 := time.Now()
	logPath := dir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	fmt.Printf("  debootstrap --variant=%s %s from %s (log: %s)\n", variant, suite, src.mirror, logPath)
	cmd, cancel := bounded(debootstrapTimeout, "debootstrap", "--variant="+variant, "--components=main", suite, dir, src.mirror)
	defer cancel()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debootstrap failed (%w, bound %s); see %s", err, debootstrapTimeout, logPath)
	}
	if err := os.WriteFile(dir+".ok", []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", err
	}
	fmt.Printf("  debootstrap done in %s\n", since(t0))
	return dir, nil
}

// writeIn writes a file inside the root filesystem at dir. It goes through
// chroot so that symlinks in the tree resolve inside it, never on the host.
func writeIn(dir, path string, mode os.FileMode, data []byte) error {
	return runCmd(bytes.NewReader(data), "chroot", dir, "/bin/sh", "-c",
		`mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"`, "sh", path, fmt.Sprintf("%o", mode))
}

func runCmd(stdin io.Reader, name string, args ...string) error {
	cmd, cancel := bounded(shortTimeout, name, args...)
	defer cancel()
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// removeTree deletes dir, but refuses while anything is mounted below it.
func removeTree(dir string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == abs || strings.HasPrefix(f[4], abs+"/")) {
			return fmt.Errorf("not removing %s: %s is mounted", abs, f[4])
		}
	}
	return os.RemoveAll(abs)
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sources is what the machine's apt configuration says about Debian: the
// mirror debootstrap uses, and the suites of the release (updates and
// security included) the images install from.
type sources struct {
	mirror  string
	entries []sourceEntry
}

type sourceEntry struct {
	uri    string
	suites []string
}

// chrootSources is the deb822 sources file for the image: every entry of
// the machine's configuration that serves the suite or its -updates and
// -security, main only.
func (s *sources) chrootSources() string {
	var b strings.Builder
	for i, e := range s.entries {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n", e.uri, strings.Join(e.suites, " "))
	}
	return b.String()
}

// aptSources reads /etc/apt/sources.list.d/*.sources (deb822) and
// /etc/apt/sources.list (one-line format).
func aptSources() (*sources, error) {
	s := &sources{}
	add := func(uri string, suites []string) {
		var keep []string
		for _, su := range suites {
			if su == suite || strings.HasPrefix(su, suite+"-") {
				keep = append(keep, su)
			}
		}
		if len(keep) == 0 {
			return
		}
		uri = strings.TrimSuffix(uri, "/")
		if s.mirror == "" && slices.Contains(keep, suite) {
			s.mirror = uri
		}
		s.entries = append(s.entries, sourceEntry{uri: uri, suites: keep})
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, stanza := range deb822(string(data)) {
			if strings.EqualFold(stanza["enabled"], "no") || !slices.Contains(strings.Fields(stanza["types"]), "deb") {
				continue
			}
			for _, uri := range strings.Fields(stanza["uris"]) {
				add(uri, strings.Fields(stanza["suites"]))
			}
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[0] != "deb" {
				continue
			}
			fields = fields[1:]
			if strings.HasPrefix(fields[0], "[") { // options
				for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
					fields = fields[1:]
				}
				if len(fields) > 0 {
					fields = fields[1:]
				}
			}
			if len(fields) >= 2 {
				add(fields[0], fields[1:2])
			}
		}
	}
	if s.mirror == "" {
		return nil, fmt.Errorf("no apt source on this machine serves %s (looked in /etc/apt/sources.list and /etc/apt/sources.list.d)", suite)
	}
	if !strings.HasPrefix(s.mirror, "http://") && !strings.HasPrefix(s.mirror, "https://") {
		return nil, fmt.Errorf("the %s mirror %s is not an http(s) URI", suite, s.mirror)
	}
	return s, nil
}

// deb822 parses stanzas of "Field: value" lines with continuation lines;
// field names are lower-cased.
func deb822(text string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	var last string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case (line[0] == ' ' || line[0] == '\t') && last != "":
			cur[last] += " " + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if ok {
				last = strings.ToLower(strings.TrimSpace(k))
				cur[last] = strings.TrimSpace(v)
			}
		}
	}
	flush()
	return out
}

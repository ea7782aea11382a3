package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// defaultPath is the PATH of every image unless it says otherwise.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// layerSpec is one layer and the history line that says what it holds.
type layerSpec struct {
	layer     v1.Layer
	createdBy string
}

// newImage stacks layers and sets the configuration: linux on the host's
// architecture, created at the given time.
func newImage(created time.Time, cfg v1.Config, layers ...layerSpec) (v1.Image, error) {
	var adds []mutate.Addendum
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:   l.layer,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: l.createdBy, Comment: "hack/images"},
		})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: created}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// writeArchive writes images, each under its reference, to one
// docker-archive tarball (atomically: a reader never sees half a file) and
// notes it for -import.
func (b *builder) writeArchive(file string, images map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for _, r := range slices.Sorted(maps.Keys(images)) {
		tag, err := name.NewTag(r, name.StrictValidation)
		if err != nil {
			return err
		}
		refs[tag] = images[r]
	}
	path := filepath.Join(b.out, file)
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	b.noteWritten(path, slices.Sorted(maps.Keys(images)), "")
	return nil
}

// noteWritten prints a tarball's references and size and queues it for -import.
func (b *builder) noteWritten(path string, refs []string, note string) {
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	for _, r := range refs {
		fmt.Printf("  %-50s %s\n", r, note)
	}
	fmt.Printf("  -> %s (%s)\n", path, humanSize(size))
	b.written = append(b.written, path)
}

package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Error is a problem with one setting.
type Error struct {
	Name   string // the variable, e.g. SHOPSTACK_MESH
	Reason string
}

func (e *Error) Error() string { return e.Name + ": " + e.Reason }

// Reader reads typed settings through a Lookup. A malformed or missing value
// is recorded and the default returned, so reading can go on and Err reports
// every problem at once. Values are trimmed, and an empty value counts as
// unset: Kubernetes manifests often carry "" for "not configured".
type Reader struct {
	lookup Lookup
	errs   []error
}

// NewReader reads settings through lookup.
func NewReader(lookup Lookup) *Reader { return &Reader{lookup: lookup} }

// Err joins every problem found so far, or is nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem with a setting found by the caller's own validation.
func (r *Reader) Fail(name, format string, args ...any) {
	r.errs = append(r.errs, &Error{Name: name, Reason: fmt.Sprintf(format, args...)})
}

func (r *Reader) raw(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// String returns the value of name, or def when unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.raw(name); ok {
		return v
	}
	return def
}

// Required returns the value of name and records an error when it is unset.
func (r *Reader) Required(name string) string {
	v, ok := r.raw(name)
	if !ok {
		r.Fail(name, "required but not set")
	}
	return v
}

// OneOf returns the value of name (def when unset), which must be one of allowed.
func (r *Reader) OneOf(name, def string, allowed ...string) string {
	v := r.String(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.Fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return def
}

// Int returns the integer value of name, or def when unset.
func (r *Reader) Int(name string, def int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Fail(name, "must be an integer, got %q", v)
		return def
	}
	return n
}

// Bool returns the boolean value of name (true/false/1/0/yes/no), or def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "t", "true", "yes", "on":
		return true
	case "0", "f", "false", "no", "off":
		return false
	}
	r.Fail(name, "must be true or false, got %q", v)
	return def
}

// Duration returns the value of name as a Go duration ("20s", "1m30s"), or def
// when unset. Negative durations are refused.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.Fail(name, "must be a non-negative duration such as 20s or 1m, got %q", v)
		return def
	}
	return d
}

// byteUnits are the suffixes Bytes accepts, longest first so "MiB" is not read as "B".
var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// Bytes returns a size in bytes, written as a plain number or with a unit
// (512KiB, 1MiB, 2MB), or def when unset. Sizes must be positive.
func (r *Reader) Bytes(name string, def int64) int64 {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	num, factor := v, int64(1)
	for _, u := range byteUnits {
		if n, found := strings.CutSuffix(v, u.suffix); found {
			num, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/factor {
		r.Fail(name, "must be a positive size such as 1048576 or 1MiB, got %q", v)
		return def
	}
	return n * factor
}

// List returns the comma-separated values of name with blanks dropped, or def
// when unset.
func (r *Reader) List(name string, def []string) []string {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// File returns the path in name (def when unset), which must name an existing
// regular file (symbolic links, as in mounted Secrets, are followed).
func (r *Reader) File(name, def string) string {
	p := r.String(name, def)
	if p == "" {
		r.Fail(name, "required but not set")
		return p
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		r.Fail(name, "file %q: %v", p, unwrapPathError(err))
	case !fi.Mode().IsRegular():
		r.Fail(name, "%q is not a regular file", p)
	}
	return p
}

// Dir returns the path in name (def when unset), which must name an existing
// directory.
func (r *Reader) Dir(name, def string) string {
	p := r.String(name, def)
	if p == "" {
		r.Fail(name, "required but not set")
		return p
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		r.Fail(name, "directory %q: %v", p, unwrapPathError(err))
	case !fi.IsDir():
		r.Fail(name, "%q is not a directory", p)
	}
	return p
}

// unwrapPathError drops the path from an *os.PathError, which the message
// already names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readOne runs read against a single variable X and returns the value and the
// reader's error.
func readOne[T any](value string, set bool, read func(r *Reader) T) (T, error) {
	m := map[string]string{}
	if set {
		m["X"] = value
	}
	r := NewReader(Map(m))
	v := read(r)
	return v, r.Err()
}

func TestReaderTypes(t *testing.T) {
	t.Run("string default when unset or blank", func(t *testing.T) {
		for _, set := range []bool{false, true} {
			v, err := readOne("  ", set, func(r *Reader) string { return r.String("X", "d") })
			if v != "d" || err != nil {
				t.Errorf("set=%v: got %q, %v", set, v, err)
			}
		}
	})
	t.Run("required names the variable", func(t *testing.T) {
		_, err := readOne("", false, func(r *Reader) string { return r.Required("X") })
		if err == nil || err.Error() != "X: required but not set" {
			t.Fatalf("got %v", err)
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Name != "X" {
			t.Fatalf("not a *config.Error naming X: %#v", err)
		}
	})
	t.Run("int", func(t *testing.T) {
		v, err := readOne(" 42 ", true, func(r *Reader) int { return r.Int("X", 1) })
		if v != 42 || err != nil {
			t.Fatalf("got %d, %v", v, err)
		}
		v, err = readOne("4x", true, func(r *Reader) int { return r.Int("X", 1) })
		if v != 1 || err == nil || !strings.Contains(err.Error(), `X: must be an integer, got "4x"`) {
			t.Fatalf("got %d, %v", v, err)
		}
	})
	t.Run("bool", func(t *testing.T) {
		for in, want := range map[string]bool{"true": true, "1": true, "yes": true, "FALSE": false, "off": false} {
			v, err := readOne(in, true, func(r *Reader) bool { return r.Bool("X", !want) })
			if v != want || err != nil {
				t.Errorf("%q: got %v, %v", in, v, err)
			}
		}
		_, err := readOne("maybe", true, func(r *Reader) bool { return r.Bool("X", false) })
		if err == nil || !strings.Contains(err.Error(), "X: must be true or false") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("duration", func(t *testing.T) {
		v, err := readOne("1m30s", true, func(r *Reader) time.Duration { return r.Duration("X", time.Second) })
		if v != 90*time.Second || err != nil {
			t.Fatalf("got %v, %v", v, err)
		}
		for _, bad := range []string{"20", "-1s", "soon"} {
			_, err := readOne(bad, true, func(r *Reader) time.Duration { return r.Duration("X", time.Second) })
			if err == nil || !strings.HasPrefix(err.Error(), "X: must be a non-negative duration") {
				t.Errorf("%q: got %v", bad, err)
			}
		}
	})
	t.Run("bytes", func(t *testing.T) {
		for in, want := range map[string]int64{"1048576": 1 << 20, "1MiB": 1 << 20, "512 KiB": 512 << 10, "2MB": 2e6, "10B": 10} {
			v, err := readOne(in, true, func(r *Reader) int64 { return r.Bytes("X", 1) })
			if v != want || err != nil {
				t.Errorf("%q: got %d, %v", in, v, err)
			}
		}
		for _, bad := range []string{"0", "-5", "1.5MiB", "lots", "99999999999999GiB"} {
			_, err := readOne(bad, true, func(r *Reader) int64 { return r.Bytes("X", 1) })
			if err == nil || !strings.HasPrefix(err.Error(), "X: must be a positive size") {
				t.Errorf("%q: got %v", bad, err)
			}
		}
	})
	t.Run("list drops blanks", func(t *testing.T) {
		v, err := readOne(" a, ,b ,", true, func(r *Reader) []string { return r.List("X", nil) })
		if diff := cmp.Diff([]string{"a", "b"}, v); diff != "" || err != nil {
			t.Fatalf("(-want +got)\n%s%v", diff, err)
		}
		v, _ = readOne("", true, func(r *Reader) []string { return r.List("X", []string{"d"}) })
		if diff := cmp.Diff([]string{"d"}, v); diff != "" {
			t.Fatalf("empty value should give the default (-want +got)\n%s", diff)
		}
	})
	t.Run("one of", func(t *testing.T) {
		_, err := readOne("linkerd", true, func(r *Reader) string { return r.OneOf("X", "none", "none", "istio") })
		if err == nil || err.Error() != `X: must be one of none, istio, got "linkerd"` {
			t.Fatalf("got %v", err)
		}
	})
}

func TestReaderFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		read    func(r *Reader) string
		value   string
		wantErr string
	}{
		"file exists":             {read: func(r *Reader) string { return r.File("X", "") }, value: file},
		"symlinked file":          {read: func(r *Reader) string { return r.File("X", "") }, value: link},
		"file missing":            {read: func(r *Reader) string { return r.File("X", "") }, value: filepath.Join(dir, "nope"), wantErr: "no such file"},
		"file is a directory":     {read: func(r *Reader) string { return r.File("X", "") }, value: dir, wantErr: "is not a regular file"},
		"dir exists":              {read: func(r *Reader) string { return r.Dir("X", "") }, value: dir},
		"dir is a file":           {read: func(r *Reader) string { return r.Dir("X", "") }, value: file, wantErr: "is not a directory"},
		"file unset, no default":  {read: func(r *Reader) string { return r.File("X", "") }, wantErr: "required but not set"},
		"dir unset uses default ": {read: func(r *Reader) string { return r.Dir("Y", dir) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := readOne(tc.value, tc.value != "", tc.read)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "X: ")):
				t.Fatalf("got %v, want an error on X containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReaderCollectsEveryProblem(t *testing.T) {
	r := NewReader(Map(map[string]string{"A": "x", "B": "y"}))
	r.Int("A", 0)
	r.Duration("B", 0)
	r.Required("C")
	err := r.Err()
	for _, name := range []string{"A: ", "B: ", "C: "} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not mention %s", err, name)
		}
	}
}

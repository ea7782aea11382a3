package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"s3cret":     "s3cret",
		"s3cret\n":   "s3cret",
		"s3cret\r\n": "s3cret",
		" s3cret \n": " s3cret ",
		"s3cret\n\n": "s3cret\n",
	} {
		p := filepath.Join(dir, "password")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadPassword(p); err != nil || got != want {
			t.Errorf("ReadPassword of %q = %q, %v; want %q", content, got, err, want)
		}
	}

	t.Run("empty", func(t *testing.T) {
		p := filepath.Join(dir, "empty")
		if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPassword(p); err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("ReadPassword of an empty file: %v", err)
		}
	})

	t.Run("missing", func(t *testing.T) {
		if _, err := ReadPassword(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadPassword of a missing file: %v", err)
		}
	})
}

// Package secretfile reads the password files the operator mounts into the
// services from their Secrets.
package secretfile

import (
	"fmt"
	"os"
	"strings"
)

// ReadPassword returns the content of a mounted password file without its
// trailing newline (files written by hand usually have one; Secrets don't).
// An empty password is an error.
func ReadPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the password file: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("the password file %s is empty", path)
	}
	return pw, nil
}

package mtlstest

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretDirUpdate(t *testing.T) {
	ca := NewCA(t, "ca")
	first, second := ca.Issue(t, "spiffe://td/ns/a/sa/b", []string{"b.a.svc"}), ca.Issue(t, "", nil)
	dir := NewSecretDir(t, Files(first, ca))
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(read(CertFile), first.CertPEM) || !bytes.Equal(read(CAFile), ca.PEM) {
		t.Fatal("first version not readable through the symlinks")
	}
	dir.Update(t, Files(second, ca))
	if !bytes.Equal(read(CertFile), second.CertPEM) || !bytes.Equal(read(KeyFile), second.KeyPEM) {
		t.Fatal("update not visible through the symlinks")
	}
	if _, err := tls.X509KeyPair(read(CertFile), read(KeyFile)); err != nil {
		t.Fatal(err)
	}
	if first.Cert.SerialNumber.Cmp(second.Cert.SerialNumber) == 0 {
		t.Fatal("two certificates with one serial")
	}
	entries, _ := os.ReadDir(dir.Dir)
	if len(entries) != 5 { // 3 names, ..data and one hidden version
		t.Fatalf("%d entries: the old version was not removed", len(entries))
	}
}

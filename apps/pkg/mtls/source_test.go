package mtls

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

// serialSeen asks the server who it is and which client certificate it saw.
func serialSeen(t *testing.T, conf *tls.Config, url string) (server *big.Int, body string) {
	t.Helper()
	resp, body, err := call(conf, url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, body
}

func TestRotation(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	url, _, serverDir := internalServer(t, ca, orderID)
	first := ca.Issue(t, orderID, nil)
	clientSrc, clientDir := loadSource(t, mtlstest.Files(first, ca))
	client, err := clientSrc.ClientTLS(Peer{SPIFFEID: paymentID})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a renewed server certificate is served to new connections", func(t *testing.T) {
		before, _ := serialSeen(t, client, url)
		renewed := ca.Issue(t, paymentID, []string{paymentDNS})
		serverDir.Update(t, mtlstest.Files(renewed, ca))
		after, _ := serialSeen(t, client, url)
		if after.Cmp(renewed.Cert.SerialNumber) != 0 || after.Cmp(before) == 0 {
			t.Fatalf("serial before %s, after %s, want %s", before, after, renewed.Cert.SerialNumber)
		}
	})
	t.Run("a renewed client certificate is presented on new connections", func(t *testing.T) {
		_, body := serialSeen(t, client, url)
		if !strings.HasSuffix(body, " "+first.Cert.SerialNumber.String()) {
			t.Fatalf("server saw %q, want serial %s", body, first.Cert.SerialNumber)
		}
		renewed := ca.Issue(t, orderID, nil)
		clientDir.Update(t, mtlstest.Files(renewed, ca))
		_, body = serialSeen(t, client, url)
		if !strings.HasSuffix(body, " "+renewed.Cert.SerialNumber.String()) {
			t.Fatalf("server saw %q, want serial %s", body, renewed.Cert.SerialNumber)
		}
	})
	t.Run("a CA added to the bundle is trusted without a restart", func(t *testing.T) {
		next := mtlstest.NewCA(t, "next CA")
		// A client already on the next CA, trusting both, as during a rotation.
		nextSrc, _ := loadSource(t, mtlstest.Files(next.Issue(t, orderID, nil), next, ca))
		fromNext, err := nextSrc.ClientTLS(Peer{SPIFFEID: paymentID})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := call(fromNext, url); err == nil {
			t.Fatal("a certificate from a CA not yet in the bundle was accepted")
		}
		serverDir.Update(t, mtlstest.Files(ca.Issue(t, paymentID, []string{paymentDNS}), ca, next))
		if _, _, err := call(fromNext, url); err != nil {
			t.Fatalf("after the bundle update: %v", err)
		}
	})
}

func TestReloadRules(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	t.Run("files are read at most once per interval", func(t *testing.T) {
		now := time.Now()
		dir := mtlstest.NewSecretDir(t, mtlstest.Files(ca.Issue(t, paymentID, nil), ca))
		src, err := NewSource(dir.Dir, ReloadInterval(time.Minute), WithClock(func() time.Time { return now }), WithLogger(discard))
		if err != nil {
			t.Fatal(err)
		}
		old := src.Certificate().Leaf.SerialNumber
		renewed := ca.Issue(t, paymentID, nil)
		dir.Update(t, mtlstest.Files(renewed, ca))
		now = now.Add(30 * time.Second)
		if got := src.Certificate().Leaf.SerialNumber; got.Cmp(old) != 0 {
			t.Fatalf("reloaded before the interval: %s", got)
		}
		now = now.Add(31 * time.Second)
		if got := src.Certificate().Leaf.SerialNumber; got.Cmp(renewed.Cert.SerialNumber) != 0 {
			t.Fatalf("not reloaded after the interval: %s", got)
		}
	})
	t.Run("a broken update keeps the previous certificate", func(t *testing.T) {
		good := ca.Issue(t, paymentID, nil)
		src, dir := loadSource(t, mtlstest.Files(good, ca))
		other := ca.Issue(t, paymentID, nil)
		dir.Update(t, map[string][]byte{mtlstest.CertFile: other.CertPEM, mtlstest.KeyFile: good.KeyPEM, mtlstest.CAFile: ca.PEM})
		if _, err := src.Reload(); err == nil {
			t.Fatal("a key that does not match the certificate was loaded")
		}
		if got := src.Certificate().Leaf.SerialNumber; got.Cmp(good.Cert.SerialNumber) != 0 {
			t.Fatalf("serving %s, want the previous %s", got, good.Cert.SerialNumber)
		}
	})
	t.Run("content is compared, not mtimes", func(t *testing.T) {
		src, dir := loadSource(t, mtlstest.Files(ca.Issue(t, paymentID, nil), ca))
		if changed, err := src.Reload(); changed || err != nil {
			t.Fatalf("unchanged files reloaded: %v %v", changed, err)
		}
		renewed := ca.Issue(t, paymentID, nil)
		target := dir.Dir + "/..data/" + CertFile
		keyTarget := dir.Dir + "/..data/" + KeyFile
		info := mustStat(t, target)
		writeKeepingMtime(t, target, renewed.CertPEM, info.ModTime())
		writeKeepingMtime(t, keyTarget, renewed.KeyPEM, info.ModTime())
		if changed, err := src.Reload(); !changed || err != nil {
			t.Fatalf("changed content with the same mtime not picked up: %v %v", changed, err)
		}
	})
}

func TestSourceErrors(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	good := ca.Issue(t, paymentID, nil)
	tests := map[string]struct {
		files map[string][]byte
		want  string
	}{
		"missing ca.crt":        {map[string][]byte{mtlstest.CertFile: good.CertPEM, mtlstest.KeyFile: good.KeyPEM}, "ca.crt"},
		"empty ca.crt":          {map[string][]byte{mtlstest.CertFile: good.CertPEM, mtlstest.KeyFile: good.KeyPEM, mtlstest.CAFile: []byte("\n")}, "ca.crt is empty"},
		"garbage ca.crt":        {map[string][]byte{mtlstest.CertFile: good.CertPEM, mtlstest.KeyFile: good.KeyPEM, mtlstest.CAFile: []byte("nope")}, "holds no PEM certificate"},
		"garbage tls.crt":       {map[string][]byte{mtlstest.CertFile: []byte("nope"), mtlstest.KeyFile: good.KeyPEM, mtlstest.CAFile: ca.PEM}, "loading tls.crt and tls.key"},
		"mismatched key":        {map[string][]byte{mtlstest.CertFile: good.CertPEM, mtlstest.KeyFile: ca.Issue(t, paymentID, nil).KeyPEM, mtlstest.CAFile: ca.PEM}, "loading tls.crt and tls.key"},
		"signed by another CA":  {mtlstest.Files(mtlstest.NewCA(t, "other").Issue(t, paymentID, nil), ca), "does not chain to ca.crt"},
		"two SPIFFE IDs":        {mtlstest.Files(ca.Issue(t, paymentID, nil, mtlstest.ExtraURI(orderID)), ca), "2 SPIFFE IDs"},
		"missing tls.key (dir)": {map[string][]byte{mtlstest.CertFile: good.CertPEM, mtlstest.CAFile: ca.PEM}, "tls.key"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := mtlstest.NewSecretDir(t, tc.files)
			_, err := NewSource(dir.Dir, WithLogger(discard))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if _, err := NewSource(t.TempDir()+"/nope", WithLogger(discard)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	ca := mtlstest.NewCA(t, "shop CA")
	now := time.Now()
	dir := mtlstest.NewSecretDir(t, mtlstest.Files(ca.Issue(t, paymentID, nil), ca))
	src, err := NewSource(dir.Dir, WithClock(func() time.Time { return now }), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if src.ID().String() != paymentID {
		t.Fatalf("own ID %s", src.ID())
	}
	now = now.Add(2 * time.Hour)
	if err := src.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "valid only from") {
		t.Fatalf("expired certificate passed: %v", err)
	}
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// writeKeepingMtime rewrites a file in place and restores its mtime, as a
// careless tool or a coarse filesystem clock might.
func writeKeepingMtime(t *testing.T, path string, content []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

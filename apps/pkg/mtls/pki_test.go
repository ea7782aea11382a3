package mtls

import (
	"log/slog"
	"testing"

	"github.com/shopstack/shopstack/apps/pkg/mtls/mtlstest"
)

var discard = slog.New(slog.DiscardHandler)

const (
	trustDomain = "cluster.local"
	orderID     = "spiffe://cluster.local/ns/shop/sa/acme-order"
	paymentID   = "spiffe://cluster.local/ns/shop/sa/acme-payment"
	userID      = "spiffe://cluster.local/ns/shop/sa/acme-user"
	paymentDNS  = "acme-payment.shop.svc"
)

// loadSource makes a Source over a fresh Secret directory, checking the files
// at every handshake.
func loadSource(t *testing.T, files map[string][]byte) (*Source, *mtlstest.SecretDir) {
	t.Helper()
	dir := mtlstest.NewSecretDir(t, files)
	src, err := NewSource(dir.Dir, ReloadInterval(0), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	return src, dir
}

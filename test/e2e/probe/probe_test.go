package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const procRoute = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0000F40A	0100F40A	0003	0	0	0	0000FFFF	0	0	0
eth0	0000600A	0100F40A	0003	0	0	0	0000FFFF	0	0	0
eth0	0000F40A	00000000	0001	0	0	0	00FFFFFF	0	0	0
`

const procRouteDefault = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	0100F40A	0003	0	0	0	00000000	0	0	0
eth0	0000F40A	00000000	0001	0	0	0	00FFFFFF	0	0	0
`

const procIPv6Route = `fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fe8000000000000000fc00fffe000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`

func TestParseIPv4Routes(t *testing.T) {
	got, err := parseIPv4Routes(strings.NewReader(procRoute))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Iface: "eth0", Destination: "10.244.0.0/16", Gateway: "10.244.0.1"},
		{Iface: "eth0", Destination: "10.96.0.0/16", Gateway: "10.244.0.1"},
		{Iface: "eth0", Destination: "10.244.0.0/24"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
	allowed, err := parsePrefixes("10.244.0.0/16, 10.96.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	if v := violations(got, allowed); len(v) != 0 {
		t.Errorf("violations = %v, want none", v)
	}
}

func TestDefaultRouteIsAViolation(t *testing.T) {
	got, err := parseIPv4Routes(strings.NewReader(procRouteDefault))
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := parsePrefixes("10.244.0.0/16,10.96.0.0/16")
	want := []Route{{Iface: "eth0", Destination: "0.0.0.0/0", Gateway: "10.244.0.1"}}
	if d := cmp.Diff(want, violations(got, allowed)); d != "" {
		t.Errorf("violations (-want +got):\n%s", d)
	}
}

func TestWiderRouteThanAllowedIsAViolation(t *testing.T) {
	allowed, _ := parsePrefixes("10.244.0.0/16")
	routes := []Route{{Destination: "10.0.0.0/8"}, {Destination: "10.244.3.0/24"}, {Destination: "10.245.0.0/16"}}
	want := []Route{{Destination: "10.0.0.0/8"}, {Destination: "10.245.0.0/16"}}
	if d := cmp.Diff(want, violations(routes, allowed)); d != "" {
		t.Errorf("violations (-want +got):\n%s", d)
	}
}

func TestParseIPv6RoutesKeepsOnlyWaysOut(t *testing.T) {
	got, err := parseIPv6Routes(strings.NewReader(procIPv6Route))
	if err != nil {
		t.Fatal(err)
	}
	// Only the kernel's unreachable default route is left, and it carries nothing.
	want := []Route{{Iface: "lo", Destination: "::/0", Reject: true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
	if v := violations(got, nil); len(v) != 0 {
		t.Errorf("violations = %v, want none", v)
	}
	withDefault := procIPv6Route + "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
	got, err = parseIPv6Routes(strings.NewReader(withDefault))
	if err != nil {
		t.Fatal(err)
	}
	if v := violations(got, nil); len(v) != 1 || v[0].Destination != "::/0" || v[0].Gateway != "fd00::1" {
		t.Errorf("violations = %v, want the IPv6 default route", v)
	}
}

func TestTLSAlert(t *testing.T) {
	for err, want := range map[error]string{
		errors.New(`Get "https://x:9443/": remote error: tls: certificate required`):         "certificate required",
		errors.New("read tcp 10.0.0.1:1->10.0.0.2:9443: remote error: tls: bad certificate"): "bad certificate",
		errors.New("dial tcp: i/o timeout"):                                                  "",
	} {
		if got := tlsAlert(err); got != want {
			t.Errorf("tlsAlert(%q) = %q, want %q", err, got, want)
		}
	}
}

func TestBodyFlags(t *testing.T) {
	f := bodyFlags{form: listFlag{"grant_type=password", "username=a@b.io", "password=x y&z"}, headers: listFlag{"Idempotency-Key: k1"}}
	r, err := f.build(http.MethodPost, "https://u/v1/auth/token")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(r.body), "grant_type=password&password=x+y%26z&username=a%40b.io"; got != want {
		t.Errorf("form = %q, want %q", got, want)
	}
	if r.headers.Get("Content-Type") != "application/x-www-form-urlencoded" || r.headers.Get("Idempotency-Key") != "k1" {
		t.Errorf("headers = %v", r.headers)
	}
	if _, err := (&bodyFlags{json: "{}", form: listFlag{"a=b"}}).build("POST", "u"); err == nil {
		t.Error("-json with -form: want an error")
	}
	if _, err := (&bodyFlags{headers: listFlag{"nocolon"}}).build("GET", "u"); err == nil {
		t.Error("a header without a colon: want an error")
	}
}

// TestHTTPReportsRefusedClientCertificate runs the http command against a TLS
// server that requires a client certificate: without one the probe must
// report a TLS alert and no HTTP status.
func TestHTTPReportsRefusedClientCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"http", "-ca", ca, srv.URL + "/v1/payments"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res HTTPResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Status != 0 || res.TLSAlert != "certificate required" {
		t.Errorf("got %+v, want no status and the TLS alert \"certificate required\"", res)
	}
}

func TestHTTPPlainAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"http", "-attempts", "2", "-want-status", "200", srv.URL + "/readyz"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res HTTPResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.Body != "ok" || res.Attempts != 1 {
		t.Errorf("got %+v", res)
	}
}

func TestBadArgumentsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"tcp"},
		{"tcp", "-attempts", "0", "a:1"},
		{"load", "-duration", "11m", "http://x"},
		{"load", "-concurrency", "17", "http://x"},
		{"orders", "-count", "501"},
		{"journey"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

func TestLoadIsBounded(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "-rps", "100", "-max-requests", "5", "-duration", "5s", srv.URL}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res LoadResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Final || res.Requests != 5 || res.Statuses["429"] != 5 || n.Load() != 5 {
		t.Errorf("got %+v (server saw %d), want 5 requests answered 429", res, n.Load())
	}
}

func TestClassifyDial(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "x.svc", IsNotFound: true}, kindDNS},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, kindRefused},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, kindUnreachable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, kindTimeout},
		{errors.New("something else"), kindOther},
	} {
		if got := classifyDial(c.err); got != c.want {
			t.Errorf("classifyDial(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestDialAttemptsReportsAddressAndKind dials loopback only: a listener, then
// the same port once it is closed.
func TestDialAttemptsReportsAddressAndKind(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	res := dialAttempts("127.0.0.1", port, 3, time.Second, 10*time.Millisecond, true)
	if res.Connected != 1 || res.Attempts != 1 || res.Resolved != "127.0.0.1:"+port || len(res.Kinds) != 0 {
		t.Errorf("to a listener: got %+v, want one connection to 127.0.0.1:%s", res, port)
	}
	_ = l.Close()
	res = dialAttempts("127.0.0.1", port, 2, time.Second, 10*time.Millisecond, false)
	if res.Connected != 0 || res.Attempts != 2 || res.Resolved != "127.0.0.1:"+port || !reflect.DeepEqual(res.Kinds, []string{kindRefused, kindRefused}) {
		t.Errorf("to a closed port: got %+v, want two refused attempts", res)
	}
}

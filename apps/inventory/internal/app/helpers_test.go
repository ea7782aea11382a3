package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func assertBody(t *testing.T, got response, status int, want map[string]any) {
	t.Helper()
	if got.Status != status {
		t.Fatalf("status %d (%s), want %d", got.Status, got.Raw, status)
	}
	if diff := cmp.Diff(want, got.Body); diff != "" {
		t.Fatalf("body (-want +got):\n%s", diff)
	}
}

func make65(c byte) []byte { return []byte(strings.Repeat(string(c), 65)) }

// oversized is more than the default 1 MiB body limit.
func oversized() []byte { return []byte(strings.Repeat("x", 2<<20)) }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func doRequest(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = jsonUnmarshal(raw, &out.Body)
	return out
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

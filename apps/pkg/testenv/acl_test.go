package testenv

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The operator renders these exact lines (internal/credentials.RedisACL); the
// hashes are SHA-256 of the passwords "r", "s", "u" and "o".
func TestRedisACLMatchesTheOperator(t *testing.T) {
	got := RedisACL(map[string]string{"replication": "r", "sentinel": "s", "user": "u", "order": "o"}, []string{"user", "order"})
	want := strings.Join([]string{
		"user default off",
		"user replication on #454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1 -@all +psync +replconf +ping",
		"user sentinel on #043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf89 allchannels -@all +auth +client|setname +client|kill +config|rewrite +exec +info +multi +ping +publish +role +script|kill +slaveof +replicaof +subscribe",
		"user user on #0bfe935e70c321c7ca3afc75ce0d0ca2f98b5422e008bb31c00c6d7f1f1c0ad6 ~user:* &user:* +@all -@admin -@dangerous",
		"user order on #65c74c15a686187bb6bbf9958f494fc6b80068034a659a9ad44991b08c58f2d2 ~order:* &order:* +@all -@admin -@dangerous",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ACL file (-want +got):\n%s", diff)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The operator's module cannot be imported here, so compare the source: every
// ACL line template of the operator must appear in ours, and no other.
func TestRedisACLTemplatesMatchTheOperatorSource(t *testing.T) {
	operator, err := os.ReadFile("../../../internal/credentials/credentials.go")
	if err != nil {
		t.Skipf("the operator's source is not beside this module: %v", err)
	}
	ours, err := os.ReadFile("acl.go")
	if err != nil {
		t.Fatal(err)
	}
	templates := func(src []byte) []string {
		return regexp.MustCompile(`"user [^"]*"`).FindAllString(string(src), -1)
	}
	if n := len(templates(operator)); n < 4 {
		t.Fatalf("found %d ACL line templates in the operator's source, want 4: has it moved?", n)
	}
	// The operator names the two fixed users through builder constants; we
	// name them through ours. Both render "%s".
	if diff := cmp.Diff(templates(operator), templates(ours)); diff != "" {
		t.Errorf("ACL line templates differ from internal/credentials (-operator +testenv):\n%s", diff)
	}
}

package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Redis ACL users besides the services'. The names match the operator's
// credentials Secret keys.
const (
	RedisReplicationUser = "replication"
	RedisSentinelUser    = "sentinel"
)

// DefaultRedisServices are the services that get a Redis ACL user, as in the
// operator (the services the call graph lets reach Redis).
var DefaultRedisServices = []string{"user", "order", "inventory"}

// RedisACL renders a Redis ACL file the way the operator does: the default
// user off, replication and Sentinel with only the commands they need, and
// each service confined to keys and channels under its own prefix.
//
// Keep in sync with RedisACL in the operator's internal/credentials package,
// which this module cannot import: the same lines, in the same order.
func RedisACL(passwords map[string]string, services []string) string {
	h := func(user string) string {
		sum := sha256.Sum256([]byte(passwords[user]))
		return "#" + hex.EncodeToString(sum[:])
	}
	lines := []string{
		"user default off",
		fmt.Sprintf("user %s on %s -@all +psync +replconf +ping", RedisReplicationUser, h(RedisReplicationUser)),
		fmt.Sprintf("user %s on %s allchannels -@all +auth +client|setname +client|kill +config|rewrite +exec +info +multi +ping +publish +role +script|kill +slaveof +replicaof +subscribe", RedisSentinelUser, h(RedisSentinelUser)),
	}
	for _, svc := range services {
		lines = append(lines, fmt.Sprintf("user %s on %s ~%s:* &%s:* +@all -@admin -@dangerous", svc, h(svc), svc, svc))
	}
	return strings.Join(lines, "\n") + "\n"
}

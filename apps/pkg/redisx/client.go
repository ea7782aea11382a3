package redisx

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shopstack/shopstack/apps/pkg/internal/tlsfiles"
)

// Open returns a client for cfg without contacting Redis: a service starts
// (and serves what it can) while Redis is unreachable, and the client
// connects when first used.
//
// With Sentinels the client asks them for the master, follows every
// failover they announce, and reconnects to the new master on its own.
// Every connection, to Sentinels and servers alike, is TLS verified against
// ca.crt, with the service's certificate as client certificate, and
// authenticates as the service's ACL user.
func Open(cfg Config) (*redis.Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("redis configuration: %w", err)
	}
	// No fixed ServerName: each connection checks the name it dialed, which
	// for a failover client is whatever the Sentinels announce.
	tlsConfig, err := tlsfiles.ClientConfig(cfg.TLSDir, "", tlsfiles.VerifyFull)
	if err != nil {
		return nil, fmt.Errorf("redis TLS (%s %s): %w", EnvTLSDir, cfg.TLSDir, err)
	}
	if cfg.Password == "" && cfg.PasswordFile != "" {
		if cfg.Password, err = ReadPasswordFile(cfg.PasswordFile); err != nil {
			return nil, fmt.Errorf("redis password: %w", err)
		}
	}
	creds := credentials(cfg)
	if len(cfg.Sentinels) > 0 {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            cfg.MasterName,
			SentinelAddrs:         cfg.Sentinels,
			CredentialsProvider:   creds,
			TLSConfig:             tlsConfig,
			DialTimeout:           cfg.DialTimeout,
			ReadTimeout:           cfg.ReadTimeout,
			WriteTimeout:          cfg.WriteTimeout,
			ContextTimeoutEnabled: true,
			PoolSize:              cfg.PoolSize,
			DisableIdentity:       true,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr:                  cfg.Addr,
		CredentialsProvider:   creds,
		TLSConfig:             tlsConfig,
		DialTimeout:           cfg.DialTimeout,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}), nil
}

// credentials supplies the user and password for each new connection,
// re-reading the password file and keeping the last good password while the
// file is being replaced.
func credentials(cfg Config) func() (string, string) {
	var mu sync.Mutex
	password := cfg.Password
	return func() (string, string) {
		if cfg.PasswordFile != "" {
			if pw, err := ReadPasswordFile(cfg.PasswordFile); err == nil {
				mu.Lock()
				password = pw
				mu.Unlock()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return cfg.User, password
	}
}

// Ping checks within a second that the client reaches its master.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

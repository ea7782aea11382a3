// Package redisx is the services' access to Redis: a client built from the
// environment the operator sets (Sentinel-aware, TLS, the service's own ACL
// user), and a token-bucket rate limiter whose buckets live in Redis so that
// every replica of a service enforces one limit per client.
//
//	cfg, err := redisx.FromEnv(os.LookupEnv)
//	rdb, err := redisx.Open(cfg)
//	defer rdb.Close()
//
//	limit, err := redisx.LimitFromEnv(os.LookupEnv)
//	limiter, err := redisx.NewLimiter(rdb, "order", limit, redisx.LimiterOptions{Registerer: metrics.Registry})
//	handler = limiter.Middleware(redisx.MiddlewareOptions{ForwardedHops: 1})(handler)
package redisx

// Package cache keeps the public catalog reads in Redis, read-through, under
// the inventory: prefix the service's ACL user is confined to.
//
// Invalidation uses a generation number: entries live under
// inventory:catalog:<generation>:..., and every write to the catalog or to
// stock bumps the generation, so all older entries become unreachable at
// once and expire by their TTL. A reader reads the generation before the
// database, so a value it caches after a concurrent write lands under the
// old generation, where nobody looks: no stale entry outlives a write.
//
// Redis is an accelerator, never a dependency: when it fails, reads go to
// the database (and skip Redis for a short while, so an outage does not add
// a timeout to every request), and a failed invalidation is retried before
// this replica trusts the cache again.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/shopstack/apps/inventory/internal/domain"
)

// Prefix is the key prefix of everything the service stores in Redis.
const Prefix = "inventory:"

const (
	generationKey = Prefix + "catalog:generation"
	// DefaultTTL bounds how long an entry lives, which also bounds
	// staleness if an invalidation was lost (Redis down during a write and
	// the replica gone before it could retry).
	DefaultTTL = time.Minute
	// DefaultTimeout bounds one Redis round trip.
	DefaultTimeout = 200 * time.Millisecond
	// DefaultBackoff is how long reads skip Redis after it failed.
	DefaultBackoff = 5 * time.Second
)

// Source is where the catalog really lives.
type Source interface {
	ListProducts(ctx context.Context) ([]domain.Product, error)
	GetProduct(ctx context.Context, sku string) (domain.Product, error)
	PutProduct(ctx context.Context, in domain.ProductInput) (domain.Product, error)
}

// Options tune a Catalog; the zero value uses the defaults.
type Options struct {
	TTL, Timeout, Backoff time.Duration
	Logger                *slog.Logger
	Registerer            prometheus.Registerer // nil: no metrics
}

// Catalog is a Source with the reads cached.
type Catalog struct {
	src  Source
	rdb  redis.Cmdable
	opts Options

	skipUntil atomic.Int64 // unix nanoseconds until which reads bypass Redis
	pending   atomic.Bool  // an invalidation failed and must be retried
	lastLog   atomic.Int64
	lookups   *prometheus.CounterVec
}

// New caches src in rdb.
func New(src Source, rdb redis.Cmdable, opts Options) (*Catalog, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Catalog{src: src, rdb: rdb, opts: opts,
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_catalog_cache_lookups_total",
			Help: "Catalog cache lookups: hit, miss, or bypass (Redis unavailable; served from the database).",
		}, []string{"result"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.lookups); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// entry is the cached form of a product.
type entry struct {
	SKU        string    `json:"sku"`
	Name       string    `json:"name"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	OnHand     int       `json:"on_hand"`
	Reserved   int       `json:"reserved"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func toEntry(p domain.Product) entry {
	return entry{p.SKU, p.Name, p.PriceCents, p.Currency, p.OnHand, p.Reserved, p.UpdatedAt}
}

func (e entry) product() domain.Product {
	return domain.Product{SKU: e.SKU, Name: e.Name, PriceCents: e.PriceCents, Currency: e.Currency,
		OnHand: e.OnHand, Reserved: e.Reserved, UpdatedAt: e.UpdatedAt}
}

// ListProducts serves the catalog from the cache, or from the source.
func (c *Catalog) ListProducts(ctx context.Context) ([]domain.Product, error) {
	var cached []entry
	gen, ok := c.lookup(ctx, "list", &cached)
	if ok {
		out := make([]domain.Product, len(cached))
		for i, e := range cached {
			out[i] = e.product()
		}
		return out, nil
	}
	products, err := c.src.ListProducts(ctx)
	if err != nil || gen == "" {
		return products, err
	}
	entries := make([]entry, len(products))
	for i, p := range products {
		entries[i] = toEntry(p)
	}
	c.store(ctx, gen, "list", entries)
	return products, nil
}

// GetProduct serves one product from the cache, or from the source.
// Unknown SKUs are not cached: nothing to invalidate when they appear.
func (c *Catalog) GetProduct(ctx context.Context, sku string) (domain.Product, error) {
	var cached entry
	gen, ok := c.lookup(ctx, "product:"+sku, &cached)
	if ok {
		return cached.product(), nil
	}
	p, err := c.src.GetProduct(ctx, sku)
	if err != nil || gen == "" {
		return p, err
	}
	c.store(ctx, gen, "product:"+sku, toEntry(p))
	return p, nil
}

// PutProduct writes through to the source and invalidates the cache.
func (c *Catalog) PutProduct(ctx context.Context, in domain.ProductInput) (domain.Product, error) {
	p, err := c.src.PutProduct(ctx, in)
	if err == nil {
		c.Invalidate(ctx)
	}
	return p, err
}

// Invalidate makes every cached entry unreachable. It never fails: when
// Redis cannot be told, the replica stops reading the cache until it can.
func (c *Catalog) Invalidate(ctx context.Context) {
	if err := c.bump(ctx); err != nil {
		c.pending.Store(true)
		c.fail(ctx, "invalidating the catalog cache", err)
	}
}

func (c *Catalog) bump(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	return c.rdb.Incr(ctx, generationKey).Err()
}

// lookup finds key of the current generation and decodes it into v. It
// returns the generation ("" when Redis is unusable: do not store) and
// whether v was filled.
func (c *Catalog) lookup(ctx context.Context, key string, v any) (string, bool) {
	if time.Now().UnixNano() < c.skipUntil.Load() {
		c.lookups.WithLabelValues("bypass").Inc()
		return "", false
	}
	if c.pending.Load() {
		if err := c.bump(ctx); err != nil {
			c.fail(ctx, "retrying the catalog cache invalidation", err)
			c.lookups.WithLabelValues("bypass").Inc()
			return "", false
		}
		c.pending.Store(false)
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	gen, err := c.rdb.Get(rctx, generationKey).Result()
	if errors.Is(err, redis.Nil) {
		gen, err = "0", nil
	}
	if err == nil {
		if _, perr := strconv.ParseUint(gen, 10, 64); perr != nil {
			err = perr
		}
	}
	if err != nil {
		c.fail(ctx, "reading the catalog cache", err)
		c.lookups.WithLabelValues("bypass").Inc()
		return "", false
	}
	data, err := c.rdb.Get(rctx, entryKey(gen, key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		c.lookups.WithLabelValues("miss").Inc()
		return gen, false
	case err != nil:
		c.fail(ctx, "reading the catalog cache", err)
		c.lookups.WithLabelValues("bypass").Inc()
		return "", false
	}
	if err := json.Unmarshal(data, v); err != nil {
		// A foreign or older format: treat as a miss and overwrite it.
		c.lookups.WithLabelValues("miss").Inc()
		return gen, false
	}
	c.lookups.WithLabelValues("hit").Inc()
	return gen, true
}

func (c *Catalog) store(ctx context.Context, gen, key string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	if err := c.rdb.Set(ctx, entryKey(gen, key), data, c.opts.TTL).Err(); err != nil {
		c.fail(ctx, "filling the catalog cache", err)
	}
}

func entryKey(gen, key string) string { return Prefix + "catalog:" + gen + ":" + key }

// fail starts a bypass period and logs, at most once per backoff period.
func (c *Catalog) fail(ctx context.Context, what string, err error) {
	now := time.Now()
	c.skipUntil.Store(now.Add(c.opts.Backoff).UnixNano())
	last := c.lastLog.Load()
	if now.UnixNano()-last >= int64(c.opts.Backoff) && c.lastLog.CompareAndSwap(last, now.UnixNano()) {
		c.opts.Logger.WarnContext(ctx, what+" failed; serving from the database", slog.Any("error", err))
	}
}

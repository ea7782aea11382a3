package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a client may send.
const (
	MaxNameLength    = 200
	MaxPriceCents    = 100_000_000_000 // one billion in major units
	MaxStock         = 1_000_000_000
	MaxItems         = 100
	MaxQuantity      = 100_000
	MinTTL           = time.Second
	MaxTTL           = 24 * time.Hour
	DefaultTTL       = 15 * time.Minute
	maxSKULength     = 64
	currencyLength   = 3
	uuidStringLength = 36
)

// skuPattern is deliberately narrow: SKUs appear in URLs, cache keys and
// log lines, so nothing there needs escaping.
var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateSKU checks a SKU from a path or a body.
func ValidateSKU(field, sku string) error {
	if !skuPattern.MatchString(sku) {
		return FieldError(field, "sku must be 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", maxSKULength)
	}
	return nil
}

// Validate checks a product before it is stored.
func (in ProductInput) Validate() error {
	if err := ValidateSKU("sku", in.SKU); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		return FieldError("name", "name is required")
	case !utf8.ValidString(in.Name) || utf8.RuneCountInString(in.Name) > MaxNameLength:
		return FieldError("name", "name must be valid UTF-8 of at most %d characters", MaxNameLength)
	case strings.ContainsFunc(in.Name, isControl):
		return FieldError("name", "name must not contain control characters")
	case in.PriceCents < 0 || in.PriceCents > MaxPriceCents:
		return FieldError("price_cents", "price_cents must be between 0 and %d", int64(MaxPriceCents))
	case !isCurrency(in.Currency):
		return FieldError("currency", "currency must be an ISO 4217 code such as EUR")
	case in.Stock < 0 || in.Stock > MaxStock:
		return FieldError("stock", "stock must be between 0 and %d", MaxStock)
	}
	return nil
}

// Normalize validates a reservation request and returns it with one line
// per SKU (quantities of repeated SKUs added up), sorted by SKU, and the
// default TTL when none was given. Sorting also fixes the order in which
// stock rows are locked, so two reservations never deadlock.
func (r ReserveRequest) Normalize() (ReserveRequest, error) {
	if !IsUUID(r.OrderID) {
		return r, FieldError("order_id", "order_id must be a UUID")
	}
	r.OrderID = strings.ToLower(r.OrderID)
	switch {
	case len(r.Items) == 0:
		return r, FieldError("items", "items must hold at least one item")
	case len(r.Items) > MaxItems:
		return r, FieldError("items", "items must hold at most %d items", MaxItems)
	}
	switch {
	case r.TTL == 0:
		r.TTL = DefaultTTL
	case r.TTL < MinTTL || r.TTL > MaxTTL:
		return r, FieldError("ttl_seconds", "ttl_seconds must be between %d and %d", int(MinTTL.Seconds()), int(MaxTTL.Seconds()))
	}
	merged := map[string]int{}
	for i, it := range r.Items {
		if err := ValidateSKU(fmt.Sprintf("items[%d].sku", i), it.SKU); err != nil {
			return r, err
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return r, FieldError(fmt.Sprintf("items[%d].quantity", i), "quantity must be between 1 and %d", MaxQuantity)
		}
		merged[it.SKU] += it.Quantity
	}
	items := make([]Item, 0, len(merged))
	for sku, q := range merged {
		if q > MaxQuantity {
			return r, FieldError("items", "the total quantity of %s must be at most %d", sku, MaxQuantity)
		}
		items = append(items, Item{SKU: sku, Quantity: q})
	}
	slices.SortFunc(items, func(a, b Item) int { return strings.Compare(a.SKU, b.SKU) })
	r.Items = items
	return r, nil
}

// IsUUID reports whether s is a UUID in the 8-4-4-4-12 hexadecimal form.
func IsUUID(s string) bool {
	if len(s) != uuidStringLength {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func isCurrency(s string) bool {
	if len(s) != currencyLength {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isControl refuses control characters and invisible format characters
// (bidi overrides, zero-width spaces, byte order marks) that make a name
// display differently from what it is.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

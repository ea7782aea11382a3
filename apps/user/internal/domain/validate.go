package domain

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of what a client may register.
const (
	MaxEmailLen       = 254 // RFC 5321's path limit less the angle brackets
	maxLocalPartLen   = 64
	MinPasswordLen    = 12  // characters
	MaxPasswordLen    = 128 // characters
	maxPasswordBytes  = 512 // so 128 four-byte characters still fit
	maxUsernameLength = 64
)

var (
	domainLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	username    = regexp.MustCompile(`^[a-z][a-z0-9._-]*$`)
)

// NormalizeEmail checks an address a customer registers or logs in with and
// returns it with surrounding spaces removed. Only a bare addr-spec of
// printable ASCII is accepted (no display name, no comments, no quoted local
// part), so what is stored is exactly what the customer typed. Case is kept;
// uniqueness ignores it.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", Invalid("email", "is required")
	case len(s) > MaxEmailLen:
		return "", Invalid("email", "must be at most %d characters", MaxEmailLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return "", Invalid("email", "must be a plain address such as name@example.com, without spaces or special characters")
		}
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", Invalid("email", "must be a plain address such as name@example.com")
	}
	local, domain, _ := strings.Cut(s, "@")
	if len(local) > maxLocalPartLen {
		return "", Invalid("email", "the part before @ must be at most %d characters", maxLocalPartLen)
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return "", Invalid("email", "the domain must contain a dot, like example.com")
	}
	for _, l := range labels {
		if !domainLabel.MatchString(l) {
			return "", Invalid("email", "the domain %q is not a valid host name", domain)
		}
	}
	return s, nil
}

// ValidatePassword checks a new password: long enough to resist guessing,
// bounded so hashing stays cheap to schedule, and not the email itself.
// Any characters are allowed, spaces included: passphrases are welcome.
func ValidatePassword(password, email string) error {
	if !utf8.ValidString(password) {
		return Invalid("password", "must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return Invalid("password", "must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen || len(password) > maxPasswordBytes:
		return Invalid("password", "must be at most %d characters", MaxPasswordLen)
	case email != "" && strings.EqualFold(password, email):
		return Invalid("password", "must not be the email address")
	}
	return nil
}

// ValidateUsername checks the admin's login name from the operator's Secret:
// lowercase, no @ (so it can never be confused with an email).
func ValidateUsername(s string) error {
	if len(s) == 0 || len(s) > maxUsernameLength || !username.MatchString(s) {
		return Invalid("username", "must be 1 to %d lowercase letters, digits, '.', '_' or '-', starting with a letter", maxUsernameLength)
	}
	return nil
}

// LoginKey is the account name failed logins are counted under: the login
// as the user would type it, case folded, so "Ann@x.io" and "ann@x.io" share
// one limit. Unknown accounts are counted too, so a lock reveals nothing.
func LoginKey(login string) string {
	return strings.ToLower(strings.TrimSpace(login))
}

package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	valid := map[string]string{
		"ann@example.com":         "ann@example.com",
		"  Ann.Lee@Example.COM  ": "Ann.Lee@Example.COM",
		"o'brien@x.io":            "o'brien@x.io",
		"a+tag@sub.example.co.uk": "a+tag@sub.example.co.uk",
	}
	for in, want := range valid {
		t.Run("valid "+in, func(t *testing.T) {
			got, err := NormalizeEmail(in)
			if err != nil || got != want {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		})
	}
	invalid := map[string]string{
		"empty":             "",
		"no at":             "ann.example.com",
		"no domain dot":     "ann@localhost",
		"display name":      "Ann <ann@example.com>",
		"angle brackets":    "<ann@example.com>",
		"space inside":      "ann lee@example.com",
		"sql injection":     "a'; DROP TABLE users;--@x.io",
		"quoted local part": `"ann lee"@example.com`,
		"non-ASCII":         "anné@example.com",
		"control character": "ann\x00@example.com",
		"bad domain label":  "ann@-example.com",
		"two ats":           "ann@b@example.com",
		"too long":          strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com",
		"long local part":   strings.Repeat("a", 65) + "@example.com",
	}
	for name, in := range invalid {
		t.Run("invalid "+name, func(t *testing.T) {
			_, err := NormalizeEmail(in)
			var de *Error
			if !errors.As(err, &de) || de.Kind != KindInvalid || de.Field != "email" {
				t.Fatalf("got %v, want an invalid email error", err)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := map[string]struct {
		password, email string
		wantErr         string
	}{
		"long enough":          {password: "correct horse battery", email: "a@x.io"},
		"12 accented letters":  {password: strings.Repeat("é", 12)},
		"too short":            {password: "short-pw", wantErr: "at least 12"},
		"11 characters":        {password: strings.Repeat("x", 11), wantErr: "at least 12"},
		"too long":             {password: strings.Repeat("x", 129), wantErr: "at most 128"},
		"the email itself":     {password: "Ann.Lee@Example.com", email: "ann.lee@example.com", wantErr: "not be the email"},
		"invalid UTF-8":        {password: strings.Repeat("\xff", 12), wantErr: "UTF-8"},
		"128 four-byte runes ": {password: strings.Repeat("😀", 128)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidatePassword(tc.password, tc.email)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			case err != nil && !errors.Is(err, ErrInvalid):
				t.Fatalf("%v is not an invalid-input error", err)
			}
		})
	}
}

func TestValidateUsername(t *testing.T) {
	for _, ok := range []string{"admin", "ops.admin", "a1_b-c"} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Admin", "admin@x.io", "1admin", "ad min", strings.Repeat("a", 65)} {
		if err := ValidateUsername(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	err := Locked(90e9)
	if !errors.Is(err, ErrLocked) || errors.Is(err, ErrInvalid) || KindOf(err) != KindLocked {
		t.Fatalf("kind matching is wrong for %v", err)
	}
	if LoginKey("  Ann@X.io ") != "ann@x.io" {
		t.Fatal("login key not folded")
	}
}

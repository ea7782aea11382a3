// Package config reads a service's settings from environment variables and,
// where a main wants them, command-line flags. Every typed read names the
// variable in its error, and a Reader collects all problems so a misconfigured
// pod reports every one of them in a single crash log instead of one per
// restart.
package config

import (
	"flag"
	"os"
	"strings"
)

// Lookup finds the value of a named setting; ok is false when it is unset.
type Lookup func(name string) (value string, ok bool)

// Env looks settings up in the process environment.
func Env() Lookup { return os.LookupEnv }

// Map looks settings up in m, for tests and embedded defaults.
func Map(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// Layered asks each lookup in turn and returns the first value found, so
// Layered(Flags(fs), Env()) lets a flag override the environment.
func Layered(lookups ...Lookup) Lookup {
	return func(name string) (string, bool) {
		for _, l := range lookups {
			if v, ok := l(name); ok {
				return v, true
			}
		}
		return "", false
	}
}

// EnvPrefix starts every variable the operator sets on a service.
const EnvPrefix = "SHOPSTACK_"

// FlagName is the command-line flag for an environment variable:
// SHOPSTACK_PUBLIC_ADDR becomes public-addr.
func FlagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, EnvPrefix)), "_", "-")
}

// DefineFlags defines a string flag named FlagName(name) for each variable,
// so a developer can run a service locally with flags instead of exports.
func DefineFlags(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		fs.String(FlagName(n), "", "overrides $"+n)
	}
}

// Flags looks a variable up among the flags of fs that were set on the
// command line (by FlagName). Flags left at their default count as unset, so
// the environment and the built-in defaults still apply. Call it after
// fs.Parse.
func Flags(fs *flag.FlagSet) Lookup {
	return func(name string) (string, bool) {
		var value string
		found := false
		fs.Visit(func(f *flag.Flag) {
			if f.Name == FlagName(name) {
				value, found = f.Value.String(), true
			}
		})
		return value, found
	}
}

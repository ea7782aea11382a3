// Command run-apps runs the whole app tier on this machine (PostgreSQL,
// Redis and the four services, with mTLS between them, see
// apps/internal/stack), seeds a small catalog and prints how to call it.
// Ctrl-C stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/template"
	"time"

	"github.com/shopstack/shopstack/apps/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "run-apps:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "where to keep binaries, certificates and logs (default: a new temporary folder, removed at exit)")
	rps := flag.Int("rate-limit", 0, "requests per second per client (0: the operator's default, 50)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	keep := *dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "shopstack-run-")
		if err != nil {
			return err
		}
		*dir = d
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}

	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := stack.Start(startCtx, stack.Options{
		Dir: *dir, RateLimitRPS: *rps, RateLimitBurst: 2 * *rps,
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "stopping the services, Redis and PostgreSQL")
		st.Close()
		fmt.Fprintln(os.Stderr, "stopped")
	}()
	if err := st.Seed(startCtx, stack.DemoCatalog); err != nil {
		return err
	}
	if err := usage.Execute(os.Stdout, view(st)); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

type serviceView struct{ Name, Public, Internal, Ops, Log string }

func view(st *stack.Stack) map[string]any {
	var services []serviceView
	for _, name := range stack.Services {
		s := st.Service(name)
		services = append(services, serviceView{name, s.PublicURL(), s.InternalURL(), s.OpsURL(), s.LogPath})
	}
	return map[string]any{
		"Stack": st, "Services": services, "ExpYear": time.Now().Year() + 2,
		"User": st.Service(stack.User).PublicURL(), "Inventory": st.Service(stack.Inventory).PublicURL(),
		"Order": st.Service(stack.Order).PublicURL(),
	}
}

var usage = template.Must(template.New("usage").Parse(`
shopstack app tier is running (files in {{.Stack.Dir}}).
{{range .Services}}
  {{printf "%-9s" .Name}} public {{.Public}}  internal {{.Internal}}  ops {{.Ops}}
            log {{.Log}}{{end}}

  postgres  {{.Stack.Postgres.Addr}}   redis {{.Stack.Redis.Addr}}
  admin     {{.Stack.AdminUsername}} / {{.Stack.AdminPassword}}

Try it (paste into a shell):

CA={{.Stack.CAFile}}
curl -sS --cacert "$CA" {{.Inventory}}/v1/products; echo
curl -sS --cacert "$CA" -X POST {{.User}}/v1/users -H 'Content-Type: application/json' \
  -d '{"email":"me@example.com","password":"correct horse battery staple"}'; echo
TOKEN=$(curl -sS --cacert "$CA" {{.User}}/v1/auth/token \
  -d grant_type=password -d username=me@example.com --data-urlencode 'password=correct horse battery staple' \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -sS --cacert "$CA" -X POST {{.Order}}/v1/orders -H "Authorization: Bearer $TOKEN" \
  -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -H 'Content-Type: application/json' \
  -d '{"items":[{"sku":"mug","quantity":2}],"card":{"number":"4242424242424242","exp_month":12,"exp_year":{{.ExpYear}},"cvc":"123"}}'; echo
curl -sS --cacert "$CA" {{.Order}}/v1/orders -H "Authorization: Bearer $TOKEN"; echo
curl -sS --cacert "$CA" {{.Inventory}}/v1/products/mug; echo

Card 4000000000000002 is declined. Press Ctrl-C to stop everything.
`))

package account

import "github.com/prometheus/client_golang/prometheus"

// metrics are the user service's business counters.
type metrics struct {
	registered prometheus.Counter
	logins     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		registered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "users_registered_total",
			Help: "Customer accounts created.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logins_total",
			Help: "Password logins, by result: success, invalid_grant, locked or error.",
		}, []string{"result"}),
	}
	// Start every series at zero so rates and alerts work from the first scrape.
	for _, r := range []string{resultSuccess, resultInvalid, resultLocked, resultError} {
		m.logins.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.registered, m.logins} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

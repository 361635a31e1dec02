package caddymodule

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backlogScrapeTimeout bounds reading every realm's queue size at scrape
// time; a queue that cannot be read by then is left out of the scrape.
const backlogScrapeTimeout = time.Second

// backlogCollector reports each live realm's events backlog, read from
// its queue when /metrics is scraped (nothing on the request path).
type backlogCollector struct{ desc *prometheus.Desc }

func newBacklogCollector() backlogCollector {
	return backlogCollector{desc: prometheus.NewDesc(
		prometheus.BuildFQName(metricsNamespace, metricsSubsystem, "events_backlog"),
		"Events waiting, by realm and state: pending (queued, not yet delivered, retries included) and dead (dead letters kept). With Redis the queue is shared, so every instance of a realm reports the same numbers.",
		[]string{"realm", "state"}, nil)}
}

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	liveQueues.Lock()
	live := make([]*pooledDelivery, 0, len(liveQueues.byRealm))
	for _, p := range liveQueues.byRealm {
		live = append(live, p)
	}
	liveQueues.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), backlogScrapeTimeout)
	defer cancel()
	for _, p := range live {
		b, err := p.queue.Backlog(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(b.Pending), p.realm, "pending")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(b.Dead), p.realm, "dead")
	}
}

package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed/internal/metrics"
)

func benchObserver() RequestObserver { return metrics.New(prometheus.NewRegistry()) }

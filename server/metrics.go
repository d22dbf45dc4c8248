package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, on a registry of its own.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	queue        *prometheus.HistogramVec
	compute      *prometheus.HistogramVec
	batch        *prometheus.HistogramVec
	loadFailures *prometheus.CounterVec
	reloads      *prometheus.CounterVec
}

// latencyBuckets span 50 µs to ~3 s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_requests_total",
			Help: "HTTP requests by model, endpoint and status code.",
		}, []string{"model", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_request_duration_seconds",
			Help:    "Time from receiving an inference request to writing its response.",
			Buckets: latencyBuckets,
		}, []string{"model"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_queue_duration_seconds",
			Help:    "Time an inference request waited in the batcher's queue before its batch started.",
			Buckets: latencyBuckets,
		}, []string{"model"}),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_compute_duration_seconds",
			Help:    "Backend time of the batch that served an inference request.",
			Buckets: latencyBuckets,
		}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_batch_size",
			Help:    "Samples per backend call.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}, []string{"model"}),
		loadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_model_load_failures_total",
			Help: "Model versions that failed to load or warm up.",
		}, []string{"model"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_model_loads_total",
			Help: "Model versions loaded, warmed up and put in service.",
		}, []string{"model"}),
	}
	queueDepth := prometheus.NewDesc("kiln_queue_depth", "Inference requests accepted and not yet answered, per model.", []string{"model", "version"}, nil)
	loaded := prometheus.NewDesc("kiln_models_loaded", "Model versions loaded and serving.", nil, nil)
	m.reg.MustRegister(m.requests, m.duration, m.queue, m.compute, m.batch, m.loadFailures, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectorFunc{descs: []*prometheus.Desc{queueDepth, loaded}, collect: func(ch chan<- prometheus.Metric) {
			vs := s.serving()
			for _, v := range vs {
				ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(v.pending.Load()), v.name, v.version)
			}
			ch <- prometheus.MustNewConstMetric(loaded, prometheus.GaugeValue, float64(len(vs)))
		}})
	return m
}

// collectorFunc adapts a function to prometheus.Collector.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

// Describe implements prometheus.Collector.
func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

package main

import (
	"math"
	"slices"
	"time"
)

// recorder collects what one virtual user saw. Each worker owns one, so the
// hot path takes no lock; recorders are merged once the run is over.
type recorder struct {
	// lat holds every measured request's duration in nanoseconds, by
	// operation name. Exact durations rather than HDR buckets: a 20 s run
	// at a few thousand requests/s is a few MB, and sorting gives exact
	// percentiles.
	lat    map[string][]int64
	ok     int64
	errors map[string]int64 // error class -> count
	codes  map[string]int64 // "200", "409 invalid_state", "transport" ...
}

func newRecorder() *recorder {
	return &recorder{lat: map[string][]int64{}, errors: map[string]int64{}, codes: map[string]int64{}}
}

// add records one finished request. class is "" for a success, else the
// error class; code is the HTTP status (with the API error code when the
// server sent one) or the transport failure.
func (r *recorder) add(op string, d time.Duration, class, code string) {
	r.lat[op] = append(r.lat[op], int64(d))
	r.codes[code]++
	if class == "" {
		r.ok++
		return
	}
	r.errors[class]++
}

// merge adds o's observations to r.
func (r *recorder) merge(o *recorder) {
	for op, l := range o.lat {
		r.lat[op] = append(r.lat[op], l...)
	}
	r.ok += o.ok
	for k, v := range o.errors {
		r.errors[k] += v
	}
	for k, v := range o.codes {
		r.codes[k] += v
	}
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize computes the summary of durations given in nanoseconds. It
// sorts ns in place.
func summarize(ns []int64) Latency {
	if len(ns) == 0 {
		return Latency{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return Latency{
		Count: int64(len(ns)),
		Mean:  ms(sum / float64(len(ns))),
		P50:   ms(float64(percentile(ns, 0.50))),
		P90:   ms(float64(percentile(ns, 0.90))),
		P99:   ms(float64(percentile(ns, 0.99))),
		P999:  ms(float64(percentile(ns, 0.999))),
		Max:   ms(float64(ns[len(ns)-1])),
	}
}

// percentile returns the nearest-rank q-quantile of sorted: the smallest
// value such that at least q of the observations are at or below it.
func percentile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts nanoseconds to milliseconds rounded to microseconds.
func ms(ns float64) float64 {
	return math.Round(ns/1e3) / 1e3
}

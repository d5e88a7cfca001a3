package store

import (
	"context"
	"testing"
	"time"
)

// benchSegments is the size of the benchmark archive.
const benchSegments = 100_000

// benchLatency is added to every request, as a stand-in for the round trip
// to a remote object store.
const benchLatency = 20 * time.Millisecond

// BenchmarkList lists a 100,000-segment WAL archive (two timelines, 16 MiB
// segment names) on the loopback S3 server with 20 ms added to every
// request, sequentially and with the default 16 list workers. The
// lists/op metric counts list requests, cpu-s/op the CPU time the whole
// process used (on a 2-core machine, the concurrent listing is bound by
// the SDK's XML decoding rather than by latency). bench_list.sh prints the
// ratio.
//
// The latency stands for the network and S3's own service time; the fake's
// CPU time is not S3's and would compete with the client for the test
// machine's cores, so list answers are replayed from a cache filled by a
// first, untimed pass (replayLists). The client's CPU time (the SDK
// decoding XML, the store) is all measured.
// Setup stores 100,000 objects in memory and takes a few seconds; -short
// skips it.
func BenchmarkList(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-object archive")
	}
	f := newFakeS3(b)
	keys := walSegments(benchSegments)
	for _, k := range keys {
		f.put(b, "walarchive", k, nil)
	}
	f.setLatency(benchLatency)
	f.replayLists()
	for _, bc := range []struct {
		name    string
		workers int
	}{{"sequential", 1}, {"concurrent", DefaultS3ListWorkers}} {
		b.Run(bc.name, func(b *testing.B) {
			s := f.open(b, "walarchive", "", S3Options{ListWorkers: bc.workers})
			// A first pass fills the replay cache (see replayLists).
			if err := s.List(context.Background(), "", func(ObjectInfo) error { return nil }); err != nil {
				b.Fatal(err)
			}
			f.resetCounts()
			cpu := processCPU()
			for b.Loop() {
				n := 0
				if err := s.List(context.Background(), "", func(ObjectInfo) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != len(keys) {
					b.Fatalf("listed %d objects, want %d", n, len(keys))
				}
			}
			b.ReportMetric(float64(f.lists.Load())/float64(b.N), "lists/op")
			b.ReportMetric((processCPU()-cpu).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(f.maxIn.Load()), "max-inflight")
		})
	}
}

// BenchmarkListModel lists the same 100,000 segment names with the same
// 20 ms per request through an in-process stand-in for the list API (no
// HTTP, no XML): it measures how much of the latency the range splitting
// hides, apart from the CPU time the SDK spends decoding pages, which
// bounds BenchmarkList on a machine with few free cores.
func BenchmarkListModel(b *testing.B) {
	keys := walSegments(benchSegments)
	for _, bc := range []struct {
		name    string
		workers int
	}{{"sequential", 1}, {"concurrent", DefaultS3ListWorkers}} {
		b.Run(bc.name, func(b *testing.B) {
			s, api := memS3(keys, "", bc.workers, DefaultS3ListPageSize)
			api.latency = benchLatency
			for b.Loop() {
				n := 0
				if err := s.List(context.Background(), "", func(ObjectInfo) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != len(keys) {
					b.Fatalf("listed %d objects, want %d", n, len(keys))
				}
			}
			b.ReportMetric(float64(api.requests.Load())/float64(b.N), "lists/op")
		})
	}
}

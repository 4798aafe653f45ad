package serving

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// replica is a serving process in miniature: a Server listening on its own port until stop
// (its SIGTERM) is called; done receives ListenAndServe's result.
type replica struct {
	url    string
	stop   context.CancelFunc
	done   chan error // ListenAndServe's result; closed after it
	result error
}

func startReplica(t *testing.T, b objstore.Bucket, drain time.Duration) *replica {
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: 50 * time.Millisecond, LogFlush: 50 * time.Millisecond,
		LabelKey: testLabelKey, DrainDelay: drain})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	r := &replica{url: "http://" + addr, stop: cancel, done: make(chan error)}
	go func() { r.result = s.ListenAndServe(ctx, addr); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// balancer sends to the replicas whose /readyz answers 200, as a Kubernetes Service does
// with a pod's readiness probe, read every 50 ms.
type balancer struct {
	mu       sync.Mutex
	replicas []*replica
	ready    map[*replica]bool
	next     int
}

func (lb *balancer) add(r *replica) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.replicas = append(lb.replicas, r)
}

func (lb *balancer) probe(ctx context.Context) {
	c := &http.Client{Timeout: time.Second}
	for ctx.Err() == nil {
		lb.mu.Lock()
		rs := append([]*replica(nil), lb.replicas...)
		lb.mu.Unlock()
		ready := map[*replica]bool{}
		for _, r := range rs {
			if resp, err := c.Get(r.url + "/readyz"); err == nil {
				ready[r] = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
		}
		lb.mu.Lock()
		lb.ready = ready
		lb.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

func (lb *balancer) pick() *replica {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for range lb.replicas {
		lb.next = (lb.next + 1) % len(lb.replicas)
		if r := lb.replicas[lb.next]; lb.ready[r] {
			return r
		}
	}
	return nil
}

func (lb *balancer) waitReady(t *testing.T, r *replica) {
	require.Eventually(t, func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return lb.ready[r]
	}, 10*time.Second, 10*time.Millisecond)
}

// A rolling restart of two replicas under continuous load (four clients, keep-alive) loses no
// request: each replica told to stop fails its readiness at once, keeps answering while the
// balancer takes it out, and only then stops listening. During its drain a replica answers
// predictions and says it is not ready on both health endpoints.
func TestARollingRestartUnderLoadFailsNoRequest(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	deploy(t, r, register(t, r, "run-1", 2, false), 0, 0)
	const drain = 400 * time.Millisecond
	lb := &balancer{ready: map[*replica]bool{}}
	a, bb := startReplica(t, b, drain), startReplica(t, b, drain)
	lb.add(a)
	lb.add(bb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lb.probe(ctx)
	lb.waitReady(t, a)
	lb.waitReady(t, bb)

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rep := lb.pick()
				if rep == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				sent.Add(1)
				resp, err := client.Post(rep.url+"/v1/models/demand:predict", "application/json", strings.NewReader(`{"features":{"x":1}}`))
				if err == nil {
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					resp.Body.Close()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}

	restart := func(old *replica) {
		fresh := startReplica(t, b, drain)
		lb.add(fresh)
		lb.waitReady(t, fresh)
		before := sent.Load()
		old.stop() // SIGTERM
		status := func(path string) int {
			resp, err := http.Get(old.url + path)
			require.NoError(t, err, "a draining replica still listens")
			resp.Body.Close()
			return resp.StatusCode
		}
		require.Eventually(t, func() bool { return status("/readyz") == http.StatusServiceUnavailable }, drain/4, 5*time.Millisecond,
			"a replica told to stop says it is not ready at once")
		require.Equal(t, http.StatusServiceUnavailable, status("/v2/health/ready"))
		code, _ := post(t, old.url+"/v1/models/demand:predict", `{"features":{"x":1}}`)
		require.Equal(t, http.StatusOK, code, "but answers")
		<-old.done
		require.NoError(t, old.result, "it stopped cleanly")
		require.Greater(t, sent.Load(), before, "the load went on")
	}
	time.Sleep(200 * time.Millisecond)
	restart(a)
	restart(bb)
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	require.Zero(t, failed.Load(), "failed requests out of %d: first %v", sent.Load(), firstErr.Load())
	require.Greater(t, sent.Load(), int64(100))
	t.Logf("%d requests, 0 failed, across a rolling restart of 2 replicas", sent.Load())
}

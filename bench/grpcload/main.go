// Command grpcload drives the serving worker's gRPC inference service (bench/serve.sh), or
// with -rest the same request over the REST v2 API from the same kind of Go client (the
// comparison of the two protocols with one load generator): a closed loop of -c clients for
// -d (the throughput), or -c clients sharing -qps (the latency at a fixed rate, like hey -q);
// it prints requests/s and the latency percentiles.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/driftline/driftline/serving/oippb"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18082", "gRPC address")
	conc := flag.Int("c", 64, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration")
	qps := flag.Float64("qps", 0, "total requests per second (0: as fast as the clients go)")
	rest := flag.String("rest", "", "send the request as REST v2 JSON to this base URL instead (http://host:port)")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	c := oippb.NewGRPCInferenceServiceClient(conn)
	req := inferRequest()
	ctx := context.Background()
	call := func() error { _, err := c.ModelInfer(ctx, req); return err }
	if *rest != "" {
		call = restCall(*rest, *conc)
	}
	if err := call(); err != nil {
		fmt.Fprintln(os.Stderr, "first request:", err)
		os.Exit(1)
	}
	lat, errs := load(call, *conc, *dur, *qps)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("requests %d errors %d rps %.0f p50_ms %.3f p99_ms %.3f\n", len(lat), errs, float64(len(lat))/dur.Seconds(),
		float64(pct(0.50).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000)
}

// inferRequest is the request of bench/serve.sh's REST body: the five features, one tensor each.
func inferRequest() *oippb.ModelInferRequest {
	req := &oippb.ModelInferRequest{ModelName: "demand",
		Parameters: map[string]*oippb.InferParameter{"routing_key": {ParameterChoice: &oippb.InferParameter_StringParam{StringParam: "store-1/item-1"}}}}
	for _, f := range []struct {
		name string
		v    float64
	}{{"price", 9.5}, {"promo", 1}, {"weekday", 5}, {"temperature", 6.5}, {"item_popularity", 2.1}} {
		req.Inputs = append(req.Inputs, &oippb.ModelInferRequest_InferInputTensor{Name: f.name, Datatype: "FP64", Shape: []int64{1},
			Contents: &oippb.InferTensorContents{Fp64Contents: []float64{f.v}}})
	}
	return req
}

// restCall sends the same request as REST v2 JSON to base.
func restCall(base string, conc int) func() error {
	body := []byte(`{"parameters": {"routing_key": "store-1/item-1"}, "inputs": [` +
		`{"name": "price", "shape": [1], "datatype": "FP64", "data": [9.5]}, {"name": "promo", "shape": [1], "datatype": "FP64", "data": [1]},` +
		`{"name": "weekday", "shape": [1], "datatype": "FP64", "data": [5]}, {"name": "temperature", "shape": [1], "datatype": "FP64", "data": [6.5]},` +
		`{"name": "item_popularity", "shape": [1], "datatype": "FP64", "data": [2.1]}]}`)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	return func() error {
		resp, err := hc.Post(base+"/v2/models/demand/infer", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}
}

// load calls from conc clients until dur has passed (qps in all, 0: as fast as they go) and
// returns each answered call's latency and how many failed.
func load(call func() error, conc int, dur time.Duration, qps float64) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var tick *time.Ticker
			if qps > 0 {
				tick = time.NewTicker(time.Duration(float64(conc) / qps * float64(time.Second)))
				defer tick.Stop()
			}
			for time.Now().Before(end) {
				if tick != nil {
					<-tick.C
				}
				t0 := time.Now()
				if err := call(); err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat, errs = append(lat, mine...), errs+bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs
}

// Command coldstartbench measures a serving replica's cold start: from starting the
// `driftline serve` process to its first ready answer (/readyz 200, then a prediction), with
// the demo model, a 1,000-tree model and 100 models, the registry on MinIO. bench/coldstart.sh
// starts MinIO and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/registry"
)

func main() {
	endpoint := flag.String("s3-endpoint", "", "MinIO endpoint")
	access := flag.String("s3-access-key", "", "S3 access key")
	secret := flag.String("s3-secret-key", "", "S3 secret key")
	bin := flag.String("driftline", "bin/driftline", "the driftline binary")
	runs := flag.Int("runs", 5, "cold starts measured per case")
	flag.Parse()
	ctx := context.Background()
	cfg := s3store.Config{Endpoint: *endpoint, AccessKey: *access, SecretKey: *secret, Bucket: "coldstart", Region: "us-east-1"}
	r := registry.New(benchutil.MinIOBucket(ctx, cfg))
	t0 := time.Now()
	benchutil.DeployDemoModel(ctx, r, "demand", 100)
	benchutil.DeployDemoModel(ctx, r, "trees1000", 1000)
	many := make([]string, 100)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range many {
		many[i] = fmt.Sprintf("m%03d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); benchutil.DeployDemoModel(ctx, r, many[i], 100) }()
	}
	wg.Wait()
	fmt.Printf("models registered in %.1f s\n", time.Since(t0).Seconds())
	env := append(os.Environ(), "DRIFTLINE_S3_ENDPOINT="+cfg.Endpoint, "DRIFTLINE_S3_ACCESS_KEY="+cfg.AccessKey,
		"DRIFTLINE_S3_SECRET_KEY="+cfg.SecretKey, "DRIFTLINE_S3_BUCKET="+cfg.Bucket, "DRIFTLINE_S3_REGION=us-east-1")
	for _, c := range []struct {
		name   string
		models []string
	}{{"the demo model (100 trees)", []string{"demand"}}, {"a 1,000-tree model", []string{"trees1000"}}, {"100 models of 100 trees", many}} {
		var ready, answer []time.Duration
		for range *runs {
			rd, an := coldStart(*bin, env, c.models)
			ready, answer = append(ready, rd), append(answer, an)
		}
		fmt.Printf("%-28s ready %s, first answer %s (median of %d; min %s, max %s)\n", c.name+":", median(ready), median(answer), *runs,
			slices.Min(answer).Round(time.Millisecond), slices.Max(answer).Round(time.Millisecond))
	}
}

// coldStart starts a serving process for models and times its readiness and its first
// prediction of the first model.
func coldStart(bin string, env, models []string) (ready, answer time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := ln.Addr().String()
	check(ln.Close())
	cmd := exec.Command(bin, "serve", "--listen", addr, "--models", strings.Join(models, ","), "--poll", "1s", "--drain-delay", "0")
	cmd.Env = env
	start := time.Now()
	check(cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		if time.Since(start) > time.Minute {
			panic("not ready within a minute")
		}
		resp, err := c.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	ready = time.Since(start)
	body := `{"features":{"price":3.5,"promo":1,"weekday":2,"temperature":21,"item_popularity":0.4}}`
	resp, err := c.Post("http://"+addr+"/v1/models/"+models[0]+":predict", "application/json", strings.NewReader(body))
	check(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		panic(fmt.Sprintf("prediction: status %d", resp.StatusCode))
	}
	return ready, time.Since(start)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

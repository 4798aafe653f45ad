// Package dashboards reads the Grafana dashboards shipped in deploy/grafana/dashboards, for
// the tests that check them against the workers' metrics and a real Prometheus.
package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A Query is one panel target.
type Query struct {
	Dashboard, Panel, RefID, Expr, Datasource string
	PanelID                                   int
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			RefID      string `json:"refId"`
			Expr       string `json:"expr"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// Load reads every dashboard of dir and returns its queries; a dashboard that does not parse,
// repeats a uid or a panel id, or has a panel without a query is an error naming it.
func Load(dir string) ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no dashboards", dir)
	}
	sort.Strings(files)
	var out []Query
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		if err := dec.Decode(&d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if d.UID == "" || uids[d.UID] != "" {
			return nil, fmt.Errorf("%s: uid %q missing or used by %s too", f, d.UID, uids[d.UID])
		}
		uids[d.UID] = f
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				return nil, fmt.Errorf("%s: panel id %d twice", f, p.ID)
			}
			ids[p.ID] = true
			if len(p.Targets) == 0 {
				return nil, fmt.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return nil, fmt.Errorf("%s: panel %q target %s has no expr", f, p.Title, t.RefID)
				}
				out = append(out, Query{Dashboard: d.Title, Panel: p.Title, PanelID: p.ID, RefID: t.RefID, Expr: t.Expr, Datasource: t.Datasource.UID})
			}
		}
	}
	return out, nil
}

var metricName = regexp.MustCompile(`\b(driftline[_:][a-zA-Z0-9_:]+)`)

// Metrics are the metric names a query reads (Driftline's, histogram suffixes removed).
func (q Query) Metrics() []string {
	var out []string
	for _, m := range metricName.FindAllString(q.Expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && !strings.Contains(m, ":") {
				m = base
			}
		}
		out = append(out, m)
	}
	return out
}

// ForPrometheus is the expression with the dashboards' template variables filled in (every
// model), as Grafana sends it.
func (q Query) ForPrometheus() string {
	return strings.ReplaceAll(q.Expr, "$model", ".*")
}

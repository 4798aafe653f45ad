// Package dashboards reads the Grafana dashboards shipped in deploy/grafana/dashboards: for
// the tests that check them against the workers' metrics and a real Prometheus, and for the
// console, which draws the same panels from the same queries. It imports nothing of
// Driftline's.
package dashboards

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A Dashboard is one dashboard file: what Driftline reads of Grafana's JSON model.
type Dashboard struct {
	UID, Title, Description string
	// From is the default time range's start (Grafana's time.from, e.g. "now-6h").
	From   string
	Panels []Panel
}

// A Panel is one panel and its queries.
type Panel struct {
	ID                       int
	Type, Title, Description string
	// Unit is Grafana's unit of the values (fieldConfig.defaults.unit: s, reqps, percentunit,
	// short).
	Unit    string
	Targets []Target
}

// A Target is one PromQL query of a panel; Legend is Grafana's legendFormat ({{label}}).
type Target struct {
	RefID, Expr, Legend, Datasource string
}

// A Query is one panel target, flattened.
type Query struct {
	Dashboard, Panel, RefID, Expr, Datasource string
	PanelID                                   int
}

type jsonDashboard struct {
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Time        struct {
		From string `json:"from"`
	} `json:"time"`
	Panels []struct {
		ID          int    `json:"id"`
		Type        string `json:"type"`
		Title       string `json:"title"`
		Description string `json:"description"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []struct {
			RefID        string `json:"refId"`
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
			Datasource   struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// Parse reads every *.json at the root of fsys, in name order; a dashboard that does not
// parse, repeats a uid or a panel id, or has a panel without a query is an error naming its
// file and the panel.
func Parse(fsys fs.FS) ([]Dashboard, error) {
	files, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards (*.json)")
	}
	sort.Strings(files)
	var out []Dashboard
	uids := map[string]string{}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var d jsonDashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if d.UID == "" || uids[d.UID] != "" {
			return nil, fmt.Errorf("%s: uid %q missing or used by %s too", f, d.UID, uids[d.UID])
		}
		uids[d.UID] = f
		db := Dashboard{UID: d.UID, Title: d.Title, Description: d.Description, From: d.Time.From}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				return nil, fmt.Errorf("%s: panel id %d twice", f, p.ID)
			}
			ids[p.ID] = true
			if len(p.Targets) == 0 {
				return nil, fmt.Errorf("%s: panel %q has no query", f, p.Title)
			}
			pn := Panel{ID: p.ID, Type: p.Type, Title: p.Title, Description: p.Description, Unit: p.FieldConfig.Defaults.Unit}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return nil, fmt.Errorf("%s: panel %q target %s has no expr", f, p.Title, t.RefID)
				}
				pn.Targets = append(pn.Targets, Target{RefID: t.RefID, Expr: t.Expr, Legend: t.LegendFormat, Datasource: t.Datasource.UID})
			}
			db.Panels = append(db.Panels, pn)
		}
		out = append(out, db)
	}
	return out, nil
}

// Load reads the dashboards of dir and returns their queries.
func Load(dir string) ([]Query, error) {
	ds, err := Parse(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path.Clean(dir), err)
	}
	var out []Query
	for _, d := range ds {
		for _, p := range d.Panels {
			for _, t := range p.Targets {
				out = append(out, Query{Dashboard: d.Title, Panel: p.Title, PanelID: p.ID, RefID: t.RefID, Expr: t.Expr, Datasource: t.Datasource})
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
func (q Query) ForPrometheus() string { return WithModels(q.Expr, ".*") }

// WithModels fills the dashboards' $model variable with a regular expression of model names
// (Prometheus anchors =~ matches at both ends).
func WithModels(expr, models string) string { return strings.ReplaceAll(expr, "$model", models) }

// UsesModel reports whether the expression is filtered by the $model variable.
func UsesModel(expr string) bool { return strings.Contains(expr, "$model") }

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// Legend is a series' name as Grafana shows it: the legendFormat with each {{label}}
// replaced by the series' value of that label (empty when it has none); without a format,
// the series' labels as PromQL writes them.
func Legend(format string, labels map[string]string) string {
	if strings.TrimSpace(format) == "" {
		keys := slices.Sorted(maps.Keys(labels))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return strings.TrimSpace(legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendLabel.FindStringSubmatch(m)[1]]
	}))
}

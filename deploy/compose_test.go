// Package deploy checks docker-compose.yml statically (no Docker engine is needed): it
// parses, pins its images, and every file, port, command and variable it references exists.
package deploy_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/driftline/driftline/internal/cli"
	"github.com/driftline/driftline/internal/devcli"
)

type service struct {
	Image       string            `yaml:"image"`
	Build       string            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   any               `yaml:"depends_on"`
}

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

func load(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var c compose
	require.NoError(t, yaml.Unmarshal(raw, &c))
	return c
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// flagValue returns the value after a flag in a command.
func flagValue(cmd []string, flag string) string {
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

func TestComposeServicesAndImages(t *testing.T) {
	c := load(t)
	for _, name := range []string{"postgresql", "temporal", "temporal-ui", "minio", "prometheus", "pipeline-worker", "serving-worker", "setup", "api", "console", "secrets", "kafka", "ingest-worker"} {
		require.Contains(t, c.Services, name)
	}
	for name, s := range c.Services {
		if s.Image != "" {
			require.Regexp(t, `^[a-z0-9./-]+:[A-Za-z0-9._-]+$`, s.Image, "service %s: image must be pinned to a tag", name)
			require.NotContains(t, s.Image, ":latest", name)
		}
		if s.Build != "" {
			_, err := os.Stat(filepath.Join("..", s.Build, "Dockerfile"))
			require.NoError(t, err, "service %s builds %s without a Dockerfile", name, s.Build)
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, "./") {
				_, err := os.Stat(filepath.Join("..", src))
				require.NoError(t, err, "service %s mounts missing %s", name, src)
			} else {
				require.Contains(t, c.Volumes, src, "service %s uses undeclared volume %s", name, src)
			}
		}
		for _, p := range s.Ports {
			require.Regexp(t, `^\$\{DRIFTLINE_BIND:-127\.0\.0\.1\}:\d+:\d+$`, p, name)
		}
	}
}

func TestComposeRunsRealDriftlineCommands(t *testing.T) {
	c := load(t)
	// The variables driftline reads: its flags' (declared with them, cli's command tree), the
	// rest of internal/config, and the run links the starter writes (DRIFTLINE_UI_URL,
	// DRIFTLINE_CONSOLE_URL).
	vars := map[string]bool{}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		visit := func(f *pflag.Flag) {
			for _, v := range f.Annotations["env"] {
				vars[v] = true
			}
		}
		cmd.LocalFlags().VisitAll(visit)
		cmd.PersistentFlags().VisitAll(visit)
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(cli.Root(devcli.Commands()...))
	require.True(t, vars["DRIFTLINE_S3_ENDPOINT"], "the walk reads the flags' variables")
	src := read(t, "../internal/config/config.go") + read(t, "../starter/starter.go")
	for name, s := range c.Services {
		if s.Build == "" || len(s.Command) == 0 {
			continue
		}
		// The command line parses as driftline would parse it: the subcommand exists and takes
		// every flag given.
		root := cli.Root()
		cmd, rest, err := root.Find(s.Command)
		require.NoError(t, err, "service %s", name)
		require.NotEqual(t, root, cmd, "service %s runs an unknown subcommand %q", name, s.Command[0])
		require.NoError(t, cmd.ParseFlags(rest), "service %s: %v", name, s.Command)
		for k := range s.Environment {
			if strings.HasPrefix(k, "DRIFTLINE_") {
				require.True(t, vars[k] || strings.Contains(src, `"`+k+`"`), "service %s sets %s, which driftline does not read", name, k)
			}
		}
	}
	// Published ports match what the workers listen on.
	w := c.Services["pipeline-worker"]
	require.Equal(t, ":9464", flagValue(w.Command, "--metrics"))
	require.Contains(t, w.Ports, "${DRIFTLINE_BIND:-127.0.0.1}:9464:9464")
	s := c.Services["serving-worker"]
	require.Equal(t, ":8080", flagValue(s.Command, "--listen"))
	require.Contains(t, s.Ports, "${DRIFTLINE_BIND:-127.0.0.1}:8080:8080")
}

func TestPrometheusScrapesBothWorkers(t *testing.T) {
	c := load(t)
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(read(t, "prometheus.yml")), &prom))
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	require.ElementsMatch(t, []string{"pipeline-worker:9464", "serving-worker:8080", "ingest-worker:9466"}, targets)
	for _, tg := range targets {
		svc, port, _ := strings.Cut(tg, ":")
		require.Contains(t, c.Services, svc)
		if svc == "ingest-worker" { // scraped on the compose network, not published (it scales)
			require.Equal(t, ":"+port, flagValue(c.Services[svc].Command, "--metrics"))
			continue
		}
		require.True(t, slices.Contains(c.Services[svc].Ports, "${DRIFTLINE_BIND:-127.0.0.1}:"+port+":"+port), "%s does not expose %s", svc, port)
	}
}

func TestDockerfileCopiesExistingPaths(t *testing.T) {
	df := read(t, "../Dockerfile")
	for _, m := range regexp.MustCompile(`(?m)^COPY (\S+) `).FindAllStringSubmatch(df, -1) {
		if m[1] == "." || strings.HasPrefix(m[1], "--") {
			continue
		}
		_, err := os.Stat(filepath.Join("..", m[1]))
		require.NoError(t, err, "Dockerfile copies missing %s", m[1])
	}
	require.Contains(t, df, "./cmd/driftline")
}

// No credential is committed: the compose file names secret files, and the files are made by
// the secrets service when the stack starts.
func TestComposeCommitsNoSecrets(t *testing.T) {
	raw := read(t, "../docker-compose.yml")
	for _, bad := range []string{"driftline-secret", "MINIO_ROOT_PASSWORD:", "DRIFTLINE_S3_SECRET_KEY:", "dev-approvals.key"} {
		require.NotContains(t, raw, bad)
	}
	c := load(t)
	require.Contains(t, c.Services["secrets"].Command[len(c.Services["secrets"].Command)-1], "/dev/urandom")
	require.Contains(t, c.Services["minio"].Environment, "MINIO_ROOT_PASSWORD_FILE")
	// Passwords come from the env file (no default: compose refuses to start without them),
	// and every published port binds to loopback unless the env file says otherwise.
	required := regexp.MustCompile(`^\$\{[A-Z_]+:\?[^}]+\}$`)
	for name, svc := range c.Services {
		for k, v := range svc.Environment {
			if strings.Contains(k, "PASSWORD") || strings.Contains(k, "PWD") {
				if !strings.HasSuffix(k, "_FILE") {
					require.Regexp(t, required, v, "service %s: %s must come from the env file", name, k)
				}
			}
		}
		for _, p := range svc.Ports {
			require.True(t, strings.HasPrefix(p, "${DRIFTLINE_BIND:-127.0.0.1}:"), "service %s publishes %s on every interface", name, p)
		}
	}
	env := read(t, "compose.env.example")
	for _, v := range []string{"POSTGRES_PASSWORD=", "GRAFANA_ADMIN_PASSWORD=", "DRIFTLINE_BIND=127.0.0.1"} {
		require.Contains(t, env, v+"\n")
	}
}

// The console reaches Jaeger and Prometheus as services of this stack, on the ports they
// listen on (its trace and dashboard pages).
func TestComposeConsoleReachesItsBackends(t *testing.T) {
	c := load(t)
	cmd := c.Services["console"].Command
	for flag, want := range map[string]string{"--jaeger": "jaeger:16686", "--prometheus": "prometheus:9090"} {
		u, err := url.Parse(flagValue(cmd, flag))
		require.NoError(t, err, flag)
		require.Equal(t, want, u.Host, flag)
		svc, port, _ := strings.Cut(want, ":")
		require.Contains(t, c.Services, svc)
		require.Contains(t, c.Services[svc].Ports, "${DRIFTLINE_BIND:-127.0.0.1}:"+port+":"+port, "%s listens on %s", svc, port)
	}
}

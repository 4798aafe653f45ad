package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// Every command the docs name is wired into the production binary, and none of the
// development tools (driftline-dev's) is.
func TestDocumentedCommandsExist(t *testing.T) {
	root := Root()
	for _, path := range []string{"setup", "worker", "serve", "api", "run", "status", "approve", "reject", "schedule create", "schedule delete",
		"models", "models list", "models show", "models alias", "models apply", "models spec", "rollback", "promote", "audit", "audit verify",
		"drift show", "drift predictions", "predict", "token", "console", "monitor start", "monitor stop", "monitor status", "monitor report",
		"monitor ack", "monitor alerts", "ingest", "features plan", "features apply", "features materialize", "features retrieve", "features get",
		"completion bash", "completion zsh"} {
		c, _, err := root.Find(strings.Fields(path))
		require.NoError(t, err, path)
		require.Equal(t, "driftline "+path, c.CommandPath(), "driftline %s is documented but not wired", path)
		require.NotEmpty(t, c.Short, path)
	}
	for _, name := range []string{"demo", "datagen", "traffic", "weather", "kafka-dev", "produce"} {
		c, _, err := root.Find([]string{name})
		require.True(t, err != nil || c == root, "driftline %s is a development tool: driftline-dev's, not the product's", name)
	}
}

// The self-declared admin: no command takes an identity from its flags.
func TestNoCommandTakesASelfDeclaredIdentity(t *testing.T) {
	for _, cmd := range [][]string{{"run"}, {"rollback"}, {"promote"}, {"schedule", "create"}, {"approve"}} {
		err := Execute(context.Background(), append(cmd, "--model", "demand", "--as", "x", "--groups", "ml-platform"))
		require.ErrorContains(t, err, "unknown flag: --as", cmd)
		require.True(t, isUsage(err), "a flag the command does not take is a usage error (exit 2)")
	}
}

// There is no default model: a command that acts on one says --model is required, and
// DRIFTLINE_MODEL names it for a shell that works on one model.
func TestModelIsRequired(t *testing.T) {
	t.Setenv("DRIFTLINE_MODEL", "")
	ctx := context.Background()
	for _, cmd := range [][]string{{"status"}, {"rollback"}, {"promote"}, {"models"}, {"run"}, {"monitor", "status"}, {"drift", "show"}, {"schedule", "delete"}} {
		err := Execute(ctx, cmd)
		require.ErrorContains(t, err, "--model is required: the model it acts on (or set DRIFTLINE_MODEL)", cmd)
	}
	t.Setenv("DRIFTLINE_MODEL", "demand")
	require.ErrorContains(t, Execute(ctx, []string{"rollback"}), "--reason is required", "DRIFTLINE_MODEL names the model")
}

// A features subcommand takes its own flags and the definitions' group only: materialize's
// --chunk is not get's. A parent without a subcommand, or with an unknown one, is a usage error.
func TestFeatureSubcommandsTakeTheirOwnFlags(t *testing.T) {
	ctx := context.Background()
	defs := []string{"--definitions", "../../examples/features.yaml", "--spec", "../../examples/demand.yaml"}
	err := Execute(ctx, append([]string{"features", "get", "--chunk", "1h"}, defs...))
	require.ErrorContains(t, err, "unknown flag: --chunk")
	require.ErrorContains(t, Execute(ctx, append([]string{"features", "retrieve"}, defs...)), "--entities and --out are required")
	for _, args := range [][]string{{"features"}, {"features", "frobnicate"}, {"monitor", "frobnicate"}, {"frobnicate"}} {
		err := Execute(ctx, args)
		require.Error(t, err, args)
		require.True(t, isUsage(err), "%v: %v", args, err)
	}
}

// Completion is cobra's: the shell asks the binary (driftline __complete ...), so a
// subcommand completes to its own flags and its subcommands, never another's.
func TestCompletionIsGeneratedFromTheCommands(t *testing.T) {
	ctx := context.Background()
	complete := func(args ...string) string {
		out, err := stdout(t, func() error { return Execute(ctx, append([]string{cobra.ShellCompRequestCmd}, args...)) })
		require.NoError(t, err)
		return out
	}
	got := complete("features", "get", "--")
	require.Contains(t, got, "--online\t")
	require.Contains(t, got, "--s3-endpoint\t")
	require.NotContains(t, got, "--chunk", "materialize's flag")
	got = complete("monitor", "")
	for _, sub := range []string{"start", "stop", "status", "report", "ack", "alerts"} {
		require.Contains(t, got, sub+"\t")
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		script, err := stdout(t, func() error { return Execute(ctx, []string{"completion", shell}) })
		require.NoError(t, err)
		require.Contains(t, script, "__complete", shell)
	}
}

// Each environment variable is declared once, where its flag is: a flag whose help names a
// variable carries it as its annotation, and one variable feeds one meaning.
func TestEnvironmentVariablesAreDeclaredWithTheirFlags(t *testing.T) {
	meaning := map[string]string{} // variable -> flag name
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			env := f.Annotations["env"]
			if strings.Contains(f.Usage, "(env ") {
				require.Len(t, env, 1, "%s --%s names a variable in its help only", c.CommandPath(), f.Name)
			}
			if len(env) == 1 {
				require.True(t, strings.HasSuffix(f.Usage, "(env "+env[0]+")"), "%s --%s: %q", c.CommandPath(), f.Name, f.Usage)
				if prev, ok := meaning[env[0]]; ok && env[0] != "USER" {
					require.Equal(t, prev, f.Name, "%s feeds two different flags", env[0])
				}
				meaning[env[0]] = f.Name
			}
		}
		c.LocalFlags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(Root())
	require.Equal(t, "model", meaning["DRIFTLINE_MODEL"])
	require.Equal(t, "s3-endpoint", meaning["DRIFTLINE_S3_ENDPOINT"])
	require.Equal(t, "temporal-address", meaning["TEMPORAL_ADDRESS"])
}

// A secret from the environment (the token, S3 keys) never shows in the help, as a flag's
// default would.
func TestHelpShowsNoSecretFromTheEnvironment(t *testing.T) {
	t.Setenv("DRIFTLINE_TOKEN", "eyJ-secret-token")
	t.Setenv("DRIFTLINE_S3_SECRET_KEY", "s3-secret-value")
	t.Setenv("DRIFTLINE_S3_ACCESS_KEY", "s3-access-value")
	help, err := stdout(t, func() error { return Execute(context.Background(), []string{"models", "--help"}) })
	require.NoError(t, err)
	require.Contains(t, help, "--token string")
	require.Contains(t, help, "--s3-secret-key string")
	for _, secret := range []string{"eyJ-secret-token", "s3-secret-value", "s3-access-value"} {
		require.NotContains(t, help, secret)
	}
}

// A worker's --concurrency is a count of activities, for every kind or kind by kind, and its
// --kinds are the pipeline's: anything else is a usage error naming the flag, before the
// worker connects anywhere.
func TestWorkerConcurrencyIsACount(t *testing.T) {
	for v, why := range map[string]string{"-1": `"-1" is not a number of activities`, "two": `"two" is not a number`, "1.5": `"1.5" is not`,
		"data=x": `"x" is not a number`, "gpu=2": `unknown worker kind "gpu"`, "=3": `unknown worker kind ""`, "data=2,all=1": `unknown worker kind "all"`} {
		err := Execute(context.Background(), []string{"worker", "--concurrency", v})
		require.ErrorContains(t, err, `--concurrency "`+v+`": `+why)
		require.True(t, isUsage(err), v)
	}
	err := Execute(context.Background(), []string{"worker", "--kinds", "data,serving"})
	require.ErrorContains(t, err, `--kinds "data,serving": unknown worker kind "serving" (want orchestration, data, training, or all)`)
	require.True(t, isUsage(err))
	t.Setenv("DRIFTLINE_WORKER_CONCURRENCY", "many")
	require.ErrorContains(t, Execute(context.Background(), []string{"worker"}), `--concurrency "many"`, "the variable is read as the flag")
}

// The edge bundles' signing key is an Ed25519 seed in hex: a missing or malformed file is a
// usage error naming the flag, before the worker connects anywhere.
func TestWorkerEdgeSigningKeyIsASeed(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "edge.key")
	require.NoError(t, os.WriteFile(bad, []byte("not hex\n"), 0o600))
	for path, want := range map[string]string{bad: "want an Ed25519 seed of 32 bytes in hex", "/nonexistent/edge.key": "--edge-signing-key-file: open"} {
		err := Execute(context.Background(), []string{"worker", "--edge-signing-key-file", path})
		require.ErrorContains(t, err, want)
		require.True(t, isUsage(err), path)
	}
}

// --concurrency N gives every kind N; kind=N pairs name some and leave the others their
// default (no entry).
func TestWorkerSlotsByKind(t *testing.T) {
	all, err := parseSlots("3")
	require.NoError(t, err)
	require.Equal(t, map[string]int{"orchestration": 3, "data": 3, "training": 3}, all)
	some, err := parseSlots(" data=4, training=0 ")
	require.NoError(t, err)
	require.Equal(t, map[string]int{"data": 4, "training": 0}, some)
	none, err := parseSlots("")
	require.NoError(t, err)
	require.Nil(t, none)
}

// A worker's or serving replica's --memory-limit is auto, off or a size: anything else is a
// usage error naming the flag, before the process connects anywhere.
func TestMemoryLimitIsASize(t *testing.T) {
	for _, cmd := range []string{"worker", "serve"} {
		err := Execute(context.Background(), []string{cmd, "--memory-limit", "plenty"})
		require.ErrorContains(t, err, `--memory-limit "plenty"`, cmd)
		require.True(t, isUsage(err), cmd)
	}
	t.Setenv("DRIFTLINE_MEMORY_LIMIT", "9 parsecs")
	require.ErrorContains(t, Execute(context.Background(), []string{"worker"}), `--memory-limit "9 parsecs"`, "the variable is read as the flag")
}

// `driftline rollout` needs the build and rising percentages ending at 100, refused before it
// connects to Temporal.
func TestRolloutRefusesBadSteps(t *testing.T) {
	err := Execute(context.Background(), []string{"rollout"})
	require.ErrorContains(t, err, "--build-id is required")
	err = Execute(context.Background(), []string{"rollout", "--build-id", "b2", "--steps", "10,half"})
	require.ErrorContains(t, err, `--steps "10,half"`)
	require.True(t, isUsage(err))
	for _, steps := range []string{"50,10,100", "10,50", "0,100", "10,150"} {
		err = Execute(context.Background(), []string{"rollout", "--build-id", "b2", "--steps", steps})
		require.ErrorContains(t, err, "ramp steps", steps)
		require.True(t, isUsage(err), steps)
	}
}

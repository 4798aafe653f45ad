package cli

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/api"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// rollbackCmd restores a model's previous production version through the API (authorised
// there as rollback, and audited).
func rollbackCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rollback [MODEL]", Short: "restore a model's previous production version", Args: modelArg}
	fs := cmd.Flags()
	a := APIFlags(fs)
	model := ModelFlag(cmd, "model")
	reason := fs.String("reason", "", "why (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *reason == "" {
			return fmt.Errorf("rollback: --reason is required, it goes into the audit trail: driftline rollback --model %s --reason \"...\"", *model)
		}
		var d registry.Deployment
		if err := a.call(func(c *api.Client) (err error) {
			d, err = c.Rollback(ctx, *model, api.PointerRequest{Reason: *reason})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("%s: production is v%d (rollback target now v%d)\n", *model, d.Production, d.Previous)
		return nil
	}
	return cmd
}

// modelArg takes the model as the one positional argument (driftline rollback demand), the
// same as --model.
func modelArg(cmd *cobra.Command, args []string) error {
	if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
		return usageError{cmd, err}
	}
	if len(args) == 1 {
		return cmd.Flags().Set("model", args[0])
	}
	return nil
}

func promoteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "promote", Short: "make a registered version production", Args: NoArgs}
	fs := cmd.Flags()
	a := APIFlags(fs)
	model := ModelFlag(cmd, "model")
	version := fs.Int("version", 0, "version to make production (required)")
	reason := fs.String("reason", "", "why (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *version == 0 || *reason == "" {
			return fmt.Errorf("promote: --version and --reason are required (driftline models --model %s lists the versions): driftline promote --model %s --version N --reason \"...\"", *model, *model)
		}
		var d registry.Deployment
		if err := a.call(func(c *api.Client) (err error) {
			d, err = c.Promote(ctx, *model, api.PointerRequest{Version: *version, Reason: *reason})
			return
		}); err != nil {
			return err
		}
		fmt.Printf("%s: v%d is production (rollback target v%d)\n", *model, d.Production, d.Previous)
		return nil
	}
	return cmd
}

// modelsAlias sets or removes an alias: driftline models alias --model M --alias NAME --version N.
func modelsAliasCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alias", Short: "set or remove an alias of a version", Args: NoArgs}
	fs := cmd.Flags()
	a := APIFlags(fs)
	model := ModelFlag(cmd, "model")
	alias := fs.String("alias", "", "alias name, e.g. challenger")
	version := fs.Int("version", 0, "version (0 removes the alias)")
	reason := fs.String("reason", "", "why (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var d registry.Deployment
		if err := a.call(func(c *api.Client) (err error) {
			d, err = c.SetAlias(ctx, *model, *alias, api.PointerRequest{Version: *version, Reason: *reason})
			return
		}); err != nil {
			return err
		}
		names := make([]string, 0, len(d.Aliases))
		for n, v := range d.Aliases {
			names = append(names, fmt.Sprintf("%s=v%d", n, v))
		}
		sort.Strings(names)
		fmt.Printf("%s aliases: %s\n", *model, orDash(strings.Join(names, ", ")))
		return nil
	}
	return cmd
}

// modelsApply registers a spec file as its model's next spec version through the API
// (change_spec; change_governance too when a governed field changes).
func modelsApplyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apply", Short: "register a spec file as its model's next spec version", Args: NoArgs}
	fs := cmd.Flags()
	a := APIFlags(fs)
	specPath := fs.String("spec", "", "model spec YAML (required)")
	reason := fs.String("reason", "", "why (required; recorded in the audit trail with the diff)")
	expected := fs.Int("expected-version", -1, "apply only if the current spec version is this one (0: none yet; -1: any)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *specPath == "" {
			return errors.New("models apply: --spec is required: driftline models apply --spec examples/demand.yaml --reason \"...\"")
		}
		raw, sp, err := readSpec(*specPath)
		if err != nil {
			return err
		}
		var out api.SpecResponse
		if err := a.call(func(c *api.Client) (err error) {
			out, err = c.ApplySpec(ctx, sp.Model, api.SpecRequest{Spec: string(raw), Reason: *reason, ExpectedVersion: expected})
			return
		}); err != nil {
			return err
		}
		if !out.Changed {
			fmt.Printf("%s: the spec is already v%d: nothing changed\n", sp.Model, out.Version)
			return nil
		}
		fmt.Printf("%s: applied spec v%d (%s) as %s\n", sp.Model, out.Version, out.Key, out.AppliedBy)
		for _, c := range out.Changes {
			gov := ""
			if slices.Contains(out.Governance, c.Path) {
				gov = "  (governed)"
			}
			fmt.Printf("  %s: %v -> %v%s\n", c.Path, orNone(c.From), orNone(c.To), gov)
		}
		return nil
	}
	return cmd
}

func orNone(v any) any {
	if v == nil {
		return "-"
	}
	return v
}

// modelsSpec prints the model's current registered spec.
func modelsSpecCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "spec", Short: "show a model's registered spec", Args: NoArgs}
	fs := cmd.Flags()
	a := APIFlags(fs)
	model := ModelFlag(cmd, "model")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var out api.SpecResponse
		if err := a.call(func(c *api.Client) (err error) { out, err = c.Spec(ctx, *model); return }); err != nil {
			return err
		}
		fmt.Printf("# %s spec v%d, applied by %s at %s: %s\n%s", *model, out.Version, out.AppliedBy, out.AppliedAt.Format(time.RFC3339), out.Reason, out.YAML)
		return nil
	}
	return cmd
}

// modelsShow prints one version's lineage, decisions and audit trail.
func modelsShowCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "show", Short: "show one version's lineage", Args: NoArgs}
	fs := cmd.Flags()
	s3 := config.S3Flags(fs)
	model := ModelFlag(cmd, "model")
	version := fs.Int("version", 0, "version (default: production)")
	a := APIFlags(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *a.Token != "" { // through the API: view on the model
			var out api.VersionResponse
			if err := a.call(func(c *api.Client) (err error) { out, err = c.Version(ctx, *model, *version); return }); err != nil {
				return err
			}
			if err := printJSON(out.Version); err != nil {
				return err
			}
			for _, kind := range api.RecordKinds {
				for _, rec := range out.Records[kind] {
					fmt.Printf("\n%s:\n%s\n", kind, rec)
				}
			}
			fmt.Printf("\naudit trail of v%d:\n", out.Version.Version)
			for _, rec := range out.Audit {
				fmt.Println("  " + rec.String())
			}
			return nil
		}
		b, err := config.OpenBucket(ctx, s3)
		if err != nil {
			return err
		}
		r := registry.New(b)
		if *version == 0 {
			d, _, err := r.Deployment(ctx, *model)
			if err != nil {
				return err
			}
			*version = d.Production
		}
		v, err := r.Version(ctx, *model, *version)
		if err != nil {
			return err
		}
		if err := printJSON(v); err != nil {
			return err
		}
		for _, dir := range []string{"decisions", "approvals", registry.ServingRecordKind, activities.CostRecordKind} {
			objs, err := b.List(ctx, keys.Records(*model, *version, dir))
			if err != nil {
				return err
			}
			for _, o := range objs {
				data, _, err := objstore.ReadAll(ctx, b, o.Key)
				if err != nil {
					return err
				}
				fmt.Printf("\n%s (%s):\n%s\n", dir, b.URI(o.Key), data)
			}
		}
		recs, err := r.Audit.List(ctx, *model, v.CreatedAt.Add(-time.Minute))
		if err != nil {
			return err
		}
		fmt.Printf("\naudit trail of v%d:\n", *version)
		for _, rec := range recs {
			if rec.Version == *version {
				fmt.Println("  " + rec.String())
			}
		}
		return nil
	}
	return cmd
}

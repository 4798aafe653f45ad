package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/internal/config"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

// operator is who runs a registry command, checked against the RBAC policy. The object
// store's write permissions remain the hard boundary; this keeps honest operators inside
// their roles and puts every change, allowed or refused, in the audit trail.
type operator struct {
	id, groups, rbac *string
}

func operatorFlags(fs *flag.FlagSet) operator {
	return operator{
		id:     fs.String("as", os.Getenv("USER"), "your identity"),
		groups: fs.String("groups", "", "your groups, comma-separated"),
		rbac:   rbacFlag(fs),
	}
}

func (o operator) authorize(ctx context.Context, log audit.Log, action, model string) error {
	return o.authorizeData(ctx, log, action, model, nil)
}

// authorizeData also checks read_dataset (read_pii for a PII dataset) when pii is not nil.
func (o operator) authorizeData(ctx context.Context, log audit.Log, action, model string, pii *bool) error {
	rbac, err := policies.LoadRBAC(*o.rbac)
	if err != nil {
		return err
	}
	e, err := policies.NewEngine(ctx, rbac)
	if err != nil {
		return err
	}
	var groups []string
	if *o.groups != "" {
		groups = strings.Split(*o.groups, ",")
	}
	who := policies.Subject{ID: *o.id, Groups: groups}
	d, err := e.Authorize(ctx, who, action, model)
	if err != nil {
		return err
	}
	if d.Allow && pii != nil {
		if d, err = e.AuthorizeDataset(ctx, who, model, *pii); err != nil {
			return err
		}
		if !d.Allow {
			action = "read_dataset"
		}
	}
	if !d.Allow {
		_, _ = log.Append(ctx, fmt.Sprintf("cli/%s/%s/%s/%d", *o.id, action, model, time.Now().UnixNano()),
			audit.Record{Actor: *o.id, Action: action + "_forbidden", Model: model, Reason: strings.Join(d.Reasons, "; ")})
		return fmt.Errorf("not allowed: %s", strings.Join(d.Reasons, "; "))
	}
	return nil
}

// pointerChange opens the registry, checks the operator may take the action, and reads the
// deployment pointer with the ETag the change will be conditioned on.
func pointerChange(ctx context.Context, s3 *s3store.Config, op operator, action, model string) (*registry.Registry, registry.Deployment, string, error) {
	b, err := config.OpenBucket(ctx, s3)
	if err != nil {
		return nil, registry.Deployment{}, "", err
	}
	r := registry.New(b)
	if err := op.authorize(ctx, r.Audit, action, model); err != nil {
		return nil, registry.Deployment{}, "", err
	}
	d, etag, err := r.Deployment(ctx, model)
	return r, d, etag, err
}

func cmdRollback(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	op := operatorFlags(fs)
	model := fs.String("model", "demand", "model")
	reason := fs.String("reason", "", "why (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 { // driftline rollback <model> [flags]
		*model = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if *reason == "" {
		return errors.New("--reason is required")
	}
	r, before, etag, err := pointerChange(ctx, s3, op, "rollback", *model)
	if err != nil {
		return err
	}
	d, err := r.RollbackIf(ctx, *model, etag, registry.Change{Actor: *op.id, Reason: *reason, Key: fmt.Sprintf("cli-rollback/%s/%s", *model, etag)})
	if err != nil {
		return err
	}
	fmt.Printf("%s: production v%d -> v%d (rollback target now v%d)\n", *model, before.Production, d.Production, d.Previous)
	return nil
}

func cmdPromote(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("promote", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	op := operatorFlags(fs)
	model := fs.String("model", "demand", "model")
	version := fs.Int("version", 0, "version to make production (required)")
	reason := fs.String("reason", "", "why (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *version == 0 || *reason == "" {
		return errors.New("--version and --reason are required")
	}
	r, _, etag, err := pointerChange(ctx, s3, op, "promote", *model)
	if err != nil {
		return err
	}
	d, err := r.PromoteIf(ctx, *model, *version, etag, registry.Change{Actor: *op.id, Reason: *reason, Key: fmt.Sprintf("cli-promote/%s/%s/%d", *model, etag, *version)})
	if err != nil {
		return err
	}
	fmt.Printf("%s: v%d is production (rollback target v%d)\n", *model, d.Production, d.Previous)
	return nil
}

// modelsAlias sets or removes an alias: driftline models alias --model M --alias NAME --version N.
func modelsAlias(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("models alias", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	op := operatorFlags(fs)
	model := fs.String("model", "demand", "model")
	alias := fs.String("alias", "", "alias name, e.g. challenger")
	version := fs.Int("version", 0, "version (0 removes the alias)")
	if err := parse(fs, args); err != nil {
		return err
	}
	r, _, etag, err := pointerChange(ctx, s3, op, "promote", *model)
	if err != nil {
		return err
	}
	d, err := r.SetAliasIf(ctx, *model, *alias, *version, etag, registry.Change{Actor: *op.id, Key: fmt.Sprintf("cli-alias/%s/%s/%s/%d", *model, etag, *alias, *version)})
	if err != nil {
		return err
	}
	fmt.Printf("%s aliases: %v\n", *model, d.Aliases)
	return nil
}

// modelsShow prints one version's lineage, decisions and audit trail.
func modelsShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("models show", flag.ContinueOnError)
	s3 := config.S3Flags(fs)
	model := fs.String("model", "demand", "model")
	version := fs.Int("version", 0, "version (default: production)")
	if err := parse(fs, args); err != nil {
		return err
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
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Printf("%s\n", out)
	for _, dir := range []string{"decisions", "approvals", registry.ServingRecordKind} {
		objs, err := b.List(ctx, fmt.Sprintf("models/%s/versions/%d/%s/", *model, *version, dir))
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

package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver of SQL catalogs on PostgreSQL

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// Source names a table: by Path, its location in the bucket (or one of its metadata files),
// or by Name (namespace.table) in Catalog, a SQL catalog's database.
type Source struct {
	Path    string
	Catalog *Catalog
	Name    string
}

// Resolve is the source a spec's table names: by path, or by name in one of catalogs (the
// worker's --iceberg-catalog); a catalog the worker lacks is an error naming it.
func Resolve(catalogs map[string]*Catalog, path, catalog, name string) (Source, error) {
	src := Source{Path: path, Name: name}
	if catalog != "" {
		if src.Catalog = catalogs[catalog]; src.Catalog == nil {
			return src, fmt.Errorf("%w: dataset.table.catalog: this worker has no Iceberg catalog %q (driftline worker --iceberg-catalog %s=URI)", dataset.ErrInvalidData, catalog, catalog)
		}
	}
	return src, nil
}

// URI is the name a table is known by in lineages and logs: iceberg+sql://catalog/name, or
// its location in the bucket.
func (src Source) URI(b objstore.Bucket) string {
	if src.Catalog != nil {
		return "iceberg+sql://" + src.Catalog.Name + "/" + src.Name
	}
	return b.URI(strings.TrimSuffix(src.Path, "/"))
}

// Catalog is a SQL catalog (the JDBC catalog's tables, which Iceberg's Java, Python and Go
// libraries share) on PostgreSQL: Name is the catalog's name in its rows.
type Catalog struct {
	Name string
	DB   *sql.DB
}

// OpenCatalog opens a SQL catalog on PostgreSQL (uri: postgres://user@host/db?...). The
// connection is opened lazily; Close it when done.
func OpenCatalog(name, uri string) (*Catalog, error) {
	if !strings.HasPrefix(uri, "postgres://") && !strings.HasPrefix(uri, "postgresql://") {
		return nil, fmt.Errorf("iceberg catalog %s: %q is not a postgres:// URI (a SQL catalog on PostgreSQL)", name, redact(uri))
	}
	db, err := sql.Open("pgx", uri)
	if err != nil {
		return nil, fmt.Errorf("iceberg catalog %s: %w", name, err)
	}
	return &Catalog{Name: name, DB: db}, nil
}

// Close closes the catalog's connections.
func (c *Catalog) Close() error { return c.DB.Close() }

// redact hides a URI's password for errors.
func redact(uri string) string { return password.ReplaceAllString(uri, "://$1:***@") }

var password = regexp.MustCompile(`://([^:/@]+):[^@]*@`)

// metadataLocation is the table's current metadata file in the catalog.
func (c *Catalog) metadataLocation(ctx context.Context, name string) (string, error) {
	i := strings.LastIndex(name, ".")
	if i <= 0 || i == len(name)-1 {
		return "", fmt.Errorf("iceberg catalog %s: %q is not namespace.table", c.Name, name)
	}
	var loc sql.NullString
	err := c.DB.QueryRowContext(ctx,
		`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3`,
		c.Name, name[:i], name[i+1:]).Scan(&loc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("%w: iceberg catalog %s has no table %s", dataset.ErrInvalidData, c.Name, name)
	case err != nil:
		return "", fmt.Errorf("iceberg catalog %s: look up %s: %w", c.Name, name, err)
	case !loc.Valid || loc.String == "":
		return "", fmt.Errorf("%w: iceberg catalog %s: table %s has no metadata location", dataset.ErrInvalidData, c.Name, name)
	}
	return loc.String, nil
}

// Load reads a table's current metadata, every file of it through the bucket. It returns
// the table and the URI it is known by (its catalog name or its location).
func Load(ctx context.Context, b objstore.Bucket, src Source) (*table.Table, string, error) {
	var loc string
	var err error
	uri := src.URI(b)
	if src.Catalog != nil {
		loc, err = src.Catalog.metadataLocation(ctx, src.Name)
	} else {
		loc, err = latestMetadata(ctx, b, src.Path)
	}
	if err != nil {
		return nil, uri, err
	}
	fsys := func(context.Context) (icebergio.IO, error) { return bucketIO{ctx: ctx, bucket: b}, nil }
	ident := strings.Split(src.Name, ".")
	if src.Name == "" {
		ident = []string{path.Base(strings.TrimSuffix(src.Path, "/"))}
	}
	t, err := table.NewFromLocation(ctx, ident, loc, fsys, nil)
	if err != nil {
		return nil, uri, fmt.Errorf("%w: Iceberg table %s: metadata %s: %v", dataset.ErrInvalidData, uri, loc, err)
	}
	return t, uri, nil
}

var metadataName = regexp.MustCompile(`^(?:v([0-9]+)|([0-9]+)-[0-9a-fA-F-]+)(?:\.gz)?\.metadata\.json(?:\.gz)?$`)

// latestMetadata finds a table's current metadata file from its location: the file named,
// else the version version-hint.text names, else the highest numbered metadata file.
func latestMetadata(ctx context.Context, b objstore.Bucket, p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if strings.Contains(path.Base(p), ".metadata.json") {
		return p, nil
	}
	dir := p + "/metadata/"
	objs, err := b.List(ctx, dir)
	if err != nil {
		return "", err
	}
	versions := map[int]string{}
	for _, o := range objs {
		m := metadataName.FindStringSubmatch(strings.TrimPrefix(o.Key, dir))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1] + m[2])
		versions[n] = o.Key
	}
	if hint, _, err := objstore.ReadAll(ctx, b, dir+"version-hint.text"); err == nil {
		h := strings.TrimSpace(string(hint))
		if n, err := strconv.Atoi(h); err == nil && versions[n] != "" {
			return versions[n], nil
		}
		for _, k := range versions {
			if strings.HasPrefix(path.Base(k), h+".metadata.json") {
				return k, nil
			}
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("%w: %s has no Iceberg metadata (no metadata/vN.metadata.json)", dataset.ErrInvalidData, b.URI(p))
	}
	ns := make([]int, 0, len(versions))
	for n := range versions {
		ns = append(ns, n)
	}
	return versions[slices.Max(ns)], nil
}

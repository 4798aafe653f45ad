package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function may be, its signature and closing brace included.
const maxFuncLines = 80

// No Go function outside tests and generated code runs over 80 lines: a function that long
// does more than one thing, and each thing wants a name. The longest three are logged.
func TestNoFunctionOver80Lines(t *testing.T) {
	type fn struct {
		name  string
		lines int
	}
	var all []fn
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "bin" || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				rel, _ := filepath.Rel(root, path)
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				all = append(all, fn{rel + ":" + fd.Name.Name, n})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 100 {
		t.Fatalf("found %d functions: the walk missed the tree", len(all))
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].lines > all[j].lines })
	t.Logf("the longest: %s (%d lines), %s (%d), %s (%d)", all[0].name, all[0].lines, all[1].name, all[1].lines, all[2].name, all[2].lines)
	for _, f := range all {
		if f.lines > maxFuncLines {
			t.Errorf("%s is %d lines, over %d: split it into functions that each do one thing", f.name, f.lines, maxFuncLines)
		}
	}
}

package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestNoWriteCalls keeps the store read-only: no non-test file of the
// package may call an S3 operation that creates, changes or deletes
// anything. The list of such operations is taken from the SDK client
// itself, so new ones are caught too.
func TestNoWriteCalls(t *testing.T) {
	mutating := map[string]bool{}
	ct := reflect.TypeFor[*s3.Client]()
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		for _, verb := range []string{"Put", "Delete", "Copy", "Create", "Upload", "Complete", "Abort", "Restore", "Update", "Write", "Rename"} {
			if strings.HasPrefix(name, verb) {
				mutating[name] = true
			}
		}
	}
	if !mutating["PutObject"] || !mutating["DeleteObjects"] || !mutating["CopyObject"] {
		t.Fatalf("the SDK's mutating operations were not found: %v", mutating)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.Contains(p, "feature/s3/manager") || strings.Contains(p, "feature/s3/transfermanager") {
				t.Errorf("%s imports the upload manager %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && mutating[sel.Sel.Name] {
				t.Errorf("%s: uses %s, which writes to the archive", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

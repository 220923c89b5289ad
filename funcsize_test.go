package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Issue 20's rule: no function over maxFuncLines lines or over maxCyclomatic
// cyclomatic complexity in any package, tests aside.
const (
	maxFuncLines  = 80
	maxCyclomatic = 25
)

// funcSizeExceptions are functions allowed to break the rule, each with
// the reason why. None is: the test fails on an entry that no longer
// breaks the rule, so a list kept "just in case" cannot grow.
var funcSizeExceptions = []string{}

// funcMeasure is one function's size by the rule's measures.
type funcMeasure struct {
	name  string // package dir (root: main) . [receiver .] name
	pos   string // file:line, for the failure message
	lines int    // from `func` to the closing brace, both included
	cyclo int    // as gocyclo counts it
}

func TestNoFunctionOver80LinesOrCyclomatic25(t *testing.T) {
	t.Parallel()
	measures, err := measureModuleFuncs(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(measures) < 100 {
		t.Fatalf("measured only %d functions: is the walk finding the module's files?", len(measures))
	}
	over := map[string]bool{}
	for _, m := range measures {
		if m.lines <= maxFuncLines && m.cyclo <= maxCyclomatic {
			continue
		}
		over[m.name] = true
		if slices.Contains(funcSizeExceptions, m.name) {
			continue
		}
		t.Errorf("%s: %s has %d lines (max %d) and cyclomatic complexity %d (max %d): split it into functions that each do one named thing",
			m.pos, m.name, m.lines, maxFuncLines, m.cyclo, maxCyclomatic)
	}
	for _, name := range funcSizeExceptions {
		if !over[name] {
			t.Errorf("%s is listed in funcSizeExceptions but no longer breaks the rule (or is gone): remove it from the list", name)
		}
	}
}

// measureModuleFuncs measures every function declared in the non-test Go
// files under root, skipping testdata, vendor and hidden directories as the
// go tool does.
func measureModuleFuncs(root string) ([]funcMeasure, error) {
	var out []funcMeasure
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = "main"
		}
		out = append(out, measureFileFuncs(fset, pkg, f)...)
		return nil
	})
	return out, err
}

// measureFileFuncs measures the function declarations of one parsed file;
// pkg prefixes their names.
func measureFileFuncs(fset *token.FileSet, pkg string, f *ast.File) []funcMeasure {
	var out []funcMeasure
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start := fset.Position(fd.Pos())
		out = append(out, funcMeasure{
			name:  pkg + "." + funcDeclName(fd),
			pos:   fmt.Sprintf("%s:%d", start.Filename, start.Line),
			lines: fset.Position(fd.End()).Line - start.Line + 1,
			cyclo: cyclomatic(fd),
		})
	}
	return out
}

// funcDeclName names a function as gocyclo does: Name, or (T).Name and
// (*T).Name for methods.
func funcDeclName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	star := ""
	if s, ok := typ.(*ast.StarExpr); ok {
		star, typ = "*", s.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr: // generic receiver T[P]
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	id, _ := typ.(*ast.Ident)
	if id == nil {
		return fd.Name.Name
	}
	return "(" + star + id.Name + ")." + fd.Name.Name
}

// cyclomatic counts as gocyclo does, function literals inside included:
// 1, plus one for each if, for, range, case clause with a list (not
// default), select clause with a communication (not default), && and ||.
func cyclomatic(fn ast.Node) int {
	c := 1
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			c++
		case *ast.CaseClause:
			if n.List != nil {
				c++
			}
		case *ast.CommClause:
			if n.Comm != nil {
				c++
			}
		case *ast.BinaryExpr:
			if n.Op == token.LAND || n.Op == token.LOR {
				c++
			}
		}
		return true
	})
	return c
}

// TestFuncMeasureCountsLinesAndBranchesAsGocyclo pins the measure the rule
// rests on, so a broken counter cannot pass every function silently.
func TestFuncMeasureCountsLinesAndBranchesAsGocyclo(t *testing.T) {
	t.Parallel()
	const src = `package p

func straight() {}

func (s *T) branchy(xs []int, ch chan int) int {
	n := 0
	if len(xs) > 0 && xs[0] > 1 || xs == nil { // if, &&, ||
		n++
	}
	for i := 0; i < 3; i++ { // for
		for range xs { // range
		}
	}
	switch n { // two case clauses with a list; default not counted
	case 1:
	case 2, 3:
	default:
	}
	select { // one comm clause; default not counted
	case <-ch:
	default:
	}
	f := func() {
		if n > 0 { // a function literal's branches count for its parent
		}
	}
	f()
	return n
}

func (v G[K]) generic() {}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := measureFileFuncs(fset, "p", f)
	want := []funcMeasure{
		{name: "p.straight", pos: "p.go:3", lines: 1, cyclo: 1},
		{name: "p.(*T).branchy", pos: "p.go:5", lines: 25, cyclo: 1 + 3 + 2 + 2 + 1 + 1},
		{name: "p.(G).generic", pos: "p.go:31", lines: 1, cyclo: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("measures:\n got %+v\nwant %+v", got, want)
	}
}

package core

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// corePackages are the sans-I/O packages (DESIGN §3): they take `now` and
// return what to send; no goroutines, sockets or clocks.
var corePackages = []string{"wire", "fec", "arq", "cc", "jitterbuffer", "internal/core", "clock", "internal/bufpool", "internal/ring"}

// TestSansIO reads the cores' non-test sources: no import of net, os or
// syscall, no wall-clock or timer call, no go statement, no global
// (unseeded) randomness.
func TestSansIO(t *testing.T) {
	forbiddenImports := map[string]bool{"net": true, "os": true, "syscall": true, "unsafe": true}
	forbiddenCalls := map[string]map[string]bool{
		"time":         {"Now": true, "Sleep": true, "After": true, "Tick": true, "NewTimer": true, "NewTicker": true, "AfterFunc": true, "Since": true, "Until": true},
		"math/rand":    {"*": true},
		"math/rand/v2": {"*": true, "New": false, "NewPCG": false, "NewChaCha8": false},
	}
	root := filepath.Join("..", "..")
	files := 0
	for _, pkg := range corePackages {
		matches, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		require.NoError(t, err)
		for _, path := range matches {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			files++
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			require.NoError(t, err)
			names := map[string]string{} // local name -> import path
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				assert.False(t, forbiddenImports[p], "%s imports %s", path, p)
				name := filepath.Base(p)
				if p == "math/rand/v2" {
					name = "rand"
				}
				if imp.Name != nil {
					name = imp.Name.Name
				}
				names[name] = p
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: go statement", path)
				case *ast.SelectorExpr:
					id, ok := n.X.(*ast.Ident)
					if !ok {
						return true
					}
					calls := forbiddenCalls[names[id.Name]]
					if calls == nil {
						return true
					}
					banned, listed := calls[n.Sel.Name]
					if (listed && banned) || (!listed && calls["*"] && ast.IsExported(n.Sel.Name) && isFunc(n.Sel.Name)) {
						t.Errorf("%s: uses %s.%s", path, names[id.Name], n.Sel.Name)
					}
				}
				return true
			})
		}
	}
	assert.Greater(t, files, 20)
}

// isFunc guesses whether an exported rand identifier is a function (types
// such as rand.Rand are fine to name).
func isFunc(name string) bool {
	switch name {
	case "Rand", "Source", "PCG", "ChaCha8", "Zipf":
		return false
	}
	return true
}

// TestCoresDoNotDependOnNet checks the import graph: no core reaches
// package net, even indirectly.
func TestCoresDoNotDependOnNet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	args := []string{"list", "-deps"}
	for _, p := range corePackages {
		args = append(args, "github.com/spillway-rt/spillway/"+p)
	}
	out, err := exec.Command("go", args...).Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		assert.NotEqual(t, "net", dep)
		assert.False(t, strings.HasPrefix(dep, "net/") && dep != "net/netip", "depends on %s", dep)
	}
}

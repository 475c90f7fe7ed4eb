// Package fuzzseed writes and checks the committed seed corpora of the
// project's fuzz targets (testdata/fuzz/<Target>/ in Go's corpus format),
// so every target's tests share one way of regenerating them. It is used by
// tests only.
package fuzzseed

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Dir is where go test reads a target's seed corpus.
func Dir(target string) string { return filepath.Join("testdata", "fuzz", target) }

// Write replaces target's committed corpus with seeds, one file each.
func Write(t testing.TB, target string, seeds [][]byte) {
	t.Helper()
	dir := Dir(target)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Check fails the test unless target has a committed, non-empty corpus.
func Check(t testing.TB, target string) {
	t.Helper()
	entries, err := os.ReadDir(Dir(target))
	if err != nil {
		t.Fatalf("seed corpus of %s: %v", target, err)
	}
	if len(entries) == 0 {
		t.Fatalf("seed corpus of %s is empty", target)
	}
}

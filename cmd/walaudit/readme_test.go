package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFindingCodesDocumented keeps the contract that every finding code is
// listed in README.md: scripts filter on these codes.
func TestFindingCodesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	codeRe := regexp.MustCompile(`"([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)"`)
	seen := map[string]string{}
	for _, dir := range []string{"../../audit", "../../plan", "../../timeline", "."} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n") {
				if !strings.Contains(line, "Code") && !strings.Contains(line, "code") {
					continue
				}
				for _, m := range codeRe.FindAllStringSubmatch(line, -1) {
					seen[m[1]] = p
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) < 20 {
		t.Fatalf("found only %d finding codes: the scan is broken", len(seen))
	}
	for code, file := range seen {
		if !strings.Contains(string(readme), "`"+code+"`") {
			t.Errorf("finding code %s (used in %s) is not documented in README.md", code, file)
		}
	}
}

// Command scan is the PAN canary's scanner: it reads the files and
// directories named on the command line (the canary directory the tests
// recorded into, the captured `go test` output) and fails when any holds a
// card number or a CVC by the rule of package canary. It prints findings
// masked (first six and last four digits), never a whole number.
//
//	go run ./internal/canary/scan -recorded DIR [FILE...]
//
// -recorded names the canary directory and also checks that the tests
// recorded something of every kind (responses, logs, database dumps): a
// canary that was never fed proves nothing.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/payloom/payloom/internal/canary"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fl := flag.NewFlagSet("scan", flag.ContinueOnError)
	recorded := fl.String("recorded", "", "the canary directory the tests recorded into")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	paths := fl.Args()
	if *recorded != "" {
		if err := checkRecorded(*recorded); err != nil {
			fmt.Fprintln(os.Stderr, "canary:", err)
			return 1
		}
		paths = append([]string{*recorded}, paths...)
	}
	if len(paths) == 0 {
		fmt.Fprintln(os.Stderr, "usage: scan [-recorded DIR] [PATH...]")
		return 2
	}
	findings, n, err := canary.ScanPaths(paths...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "canary:", err)
		return 1
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "canary: FAIL: %d card numbers or CVCs in %d files scanned\n", len(findings), n)
		return 1
	}
	fmt.Fprintf(os.Stderr, "canary: ok: no card number or CVC in %d files\n", n)
	return 0
}

// checkRecorded fails unless dir holds at least one file of each kind.
func checkRecorded(dir string) error {
	kinds := map[string]int{".responses": 0, ".log": 0, ".db.jsonl": 0}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for k := range kinds {
			if strings.HasSuffix(path, k) {
				kinds[k]++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, n := range kinds {
		if n == 0 {
			return fmt.Errorf("%s holds no %s file: the tests recorded nothing of that kind", dir, k)
		}
	}
	return nil
}

package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// scanForCardData fails the test if any card number or CVC used by the test
// shows up in the instance's logs (every process's stdout and stderr) or in
// its data directory (the SQLite file, its WAL and shared-memory files, the
// vault key file), as raw bytes or as a value in any table.
func scanForCardData(t *testing.T, in *instance, pans, cvcs []string) {
	t.Helper()
	findings, err := findCardData(in.LogDir, in.DataDir, pans, cvcs)
	if err != nil {
		t.Fatalf("scan for card data: %v", err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

// panForms returns a card number as it could be written: plain, and in
// its printed groups (4-4-4-4, or 4-6-5 for 15 digits) separated by spaces
// or dashes.
func panForms(pan string) []string {
	sizes := []int{4, 4, 4, 4, 4}
	if len(pan) == 15 {
		sizes = []int{4, 6, 5}
	}
	var groups []string
	for i, k := 0, 0; i < len(pan); i, k = i+sizes[k], k+1 {
		groups = append(groups, pan[i:min(i+sizes[k], len(pan))])
	}
	return []string{pan, strings.Join(groups, " "), strings.Join(groups, "-")}
}

// cvcForms returns how a CVC would appear next to a key: as a JSON string,
// as a JSON field, or as a key=value pair. A bare three-digit number is not
// searched for: it occurs by chance in any binary file.
func cvcForms(cvc string) []string {
	return []string{`"` + cvc + `"`, `cvc":"` + cvc, `cvc": "` + cvc, `cvc=` + cvc, `cvv":"` + cvc}
}

// findCardData returns one line per finding. dataDir may hold payloom.db.
func findCardData(logDir, dataDir string, pans, cvcs []string) ([]string, error) {
	var needles []string
	for _, p := range pans {
		needles = append(needles, panForms(p)...)
	}
	for _, c := range cvcs {
		needles = append(needles, cvcForms(c)...)
	}

	var findings []string
	scanned := 0
	for _, root := range []string{logDir, dataDir} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for _, n := range needles {
				if i := bytes.Index(b, []byte(n)); i >= 0 {
					findings = append(findings, fmt.Sprintf("%s: found %q at byte %d", path, n, i))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if scanned == 0 {
		return nil, fmt.Errorf("no files under %s and %s", logDir, dataDir)
	}

	db := filepath.Join(dataDir, "payloom.db")
	if _, err := os.Stat(db); err != nil {
		return findings, nil
	}
	more, err := findCardDataInTables(db, pans, cvcs)
	if err != nil {
		return nil, err
	}
	return append(findings, more...), nil
}

// findCardDataInTables reads every value of every table of the SQLite file
// (read-only) and reports values that hold a card number, values that are
// exactly a CVC, and columns whose names suggest card data.
func findCardDataInTables(path string, pans, cvcs []string) ([]string, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tables, err := queryStrings(db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("%s has no tables", path)
	}
	var findings []string
	for _, table := range tables {
		cols, err := queryStrings(db, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			return nil, err
		}
		for _, col := range cols {
			lc := strings.ToLower(col)
			for _, bad := range []string{"cvc", "cvv", "number", "pan"} {
				if strings.Contains(lc, bad) {
					findings = append(findings, fmt.Sprintf("table %s has a column %q (like %%%s%%)", table, col, bad))
				}
			}
		}
		rows, err := db.Query(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case string:
					s = v
				case []byte:
					s = string(v)
				case int64:
					s = fmt.Sprint(v)
				default:
					continue
				}
				for _, p := range pans {
					for _, form := range panForms(p) {
						if strings.Contains(s, form) {
							findings = append(findings, fmt.Sprintf("%s.%s holds card number %s…", table, cols[i], p[:6]))
						}
					}
				}
				for _, c := range cvcs {
					if strings.TrimSpace(s) == c {
						findings = append(findings, fmt.Sprintf("%s.%s holds a value equal to CVC %q", table, cols[i], c))
					}
					for _, form := range cvcForms(c) {
						if strings.Contains(s, form) {
							findings = append(findings, fmt.Sprintf("%s.%s holds %q", table, cols[i], form))
						}
					}
				}
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return findings, nil
}

func queryStrings(db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// TestCardDataScanFindsPlantedData checks the scanner itself: card data
// planted in a log, a raw file and a table column must all be found, so a
// clean scan means something.
func TestCardDataScanFindsPlantedData(t *testing.T) {
	logDir, dataDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(logDir, "serve.stderr.log"),
		[]byte(`{"msg":"tokenize","card":"4242-4242-4242-4242"}`+"\n"+`card=3782 822463 10005`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", filepath.Join(dataDir, "payloom.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE cards (id TEXT, card_number TEXT, extra TEXT)`,
		`INSERT INTO cards VALUES ('tok_1', 'x', '9183')`,
		`CREATE TABLE blobs (b BLOB)`,
		`INSERT INTO blobs VALUES (CAST('{"n":"5555555555554444"}' AS BLOB))`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	findings, err := findCardData(logDir, dataDir, []string{cardVisa, cardMastercard, cardAmex}, []string{cvcAmex})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(findings, "\n")
	for _, want := range []string{
		`"4242-4242-4242-4242"`,      // log line with separators
		`"3782 822463 10005"`,        // an Amex number in its groups
		`column "card_number"`,       // column name
		`cards.extra holds a value`,  // exact CVC value
		`blobs.b holds card number`,  // number inside a blob value
		`payloom.db: found "5555555`, // raw bytes of the file
	} {
		if !strings.Contains(all, want) {
			t.Errorf("findCardData findings = \n%s\nwant one containing %q", all, want)
		}
	}
}

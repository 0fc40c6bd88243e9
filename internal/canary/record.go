package canary

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// EnvDir names the directory tests record into. Unset, recording is off
// and costs nothing.
const EnvDir = "PAYLOOM_CANARY_DIR"

// Dir returns the recording directory, or "" when recording is off.
func Dir() string { return os.Getenv(EnvDir) }

// Recorder writes what one test's server produced into the canary
// directory, under a file prefix unique to the test. A nil *Recorder (what
// New returns when recording is off) does nothing.
type Recorder struct {
	prefix string
	mu     sync.Mutex
	resp   *os.File
}

// New returns a recorder for the test or harness called name, or nil when
// PAYLOOM_CANARY_DIR is unset. Failing to record is reported as an error:
// a canary that silently records nothing proves nothing.
func New(name string) (*Recorder, error) {
	dir := Dir()
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	if len(safe) > 100 {
		safe = safe[:100]
	}
	return &Recorder{prefix: filepath.Join(dir, safe+"-"+hex.EncodeToString(rnd[:]))}, nil
}

// Response records one HTTP response body. The request's path is noted
// with its digit runs masked: it is what the test sent (some tests send a
// card number in a URL on purpose), not what the server answered.
//
// The API's OpenAPI document (GET /v1/openapi.json) is not recorded: it is
// static text whose examples use the networks' published test cards, not
// data the server holds.
func (r *Recorder) Response(method, path string, status int, body []byte) error {
	if r == nil || path == "/v1/openapi.json" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resp == nil {
		f, err := os.OpenFile(r.prefix+".responses", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("canary: %w", err)
		}
		r.resp = f
	}
	_, err := fmt.Fprintf(r.resp, "%s %s %d\n%s\n", method, maskDigits(path), status, body)
	return err
}

// maskDigits replaces every run of four digits or more with asterisks.
func maskDigits(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j-i >= 4 {
			for k := i; k < j; k++ {
				b[k] = '*'
			}
		}
		i = max(j, i+1)
	}
	return string(b)
}

// WriteFile records data under the prefix with the suffix (".log").
func (r *Recorder) WriteFile(suffix string, data []byte) error {
	if r == nil {
		return nil
	}
	return os.WriteFile(r.prefix+suffix, data, 0o600)
}

// CopyFile records the content of the file at src.
func (r *Recorder) CopyFile(suffix, src string) error {
	if r == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(r.prefix+suffix, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Close closes the responses file.
func (r *Recorder) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resp == nil {
		return nil
	}
	err := r.resp.Close()
	r.resp = nil
	return err
}

// Dialects of DumpDB.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DumpDB records every row of every table of db, one JSON object per line
// ({"table": ..., "row": {...}}), under the suffix ".db.jsonl". Bytes that
// are UTF-8 text (stored JSON, response bodies) are written as text, so
// that the scan reads them; other bytes (ciphertexts, hashes) as base64,
// whose digit runs are too short to look like a card number (hex would
// not be).
func (r *Recorder) DumpDB(db *sql.DB, dialect string) error {
	if r == nil {
		return nil
	}
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if dialect == Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`
	}
	rows, err := db.Query(q)
	if err != nil {
		return fmt.Errorf("canary: list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("canary: the database has no tables")
	}
	f, err := os.OpenFile(r.prefix+".db.jsonl", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, t := range tables {
		if err := dumpTable(db, enc, t, dialect); err != nil {
			return err
		}
	}
	return f.Close()
}

func dumpTable(db *sql.DB, enc *json.Encoder, table, dialect string) error {
	quoted := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	rows, err := db.Query(`SELECT * FROM ` + quoted)
	if err != nil {
		return fmt.Errorf("canary: dump %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("canary: dump %s: %w", table, err)
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = plain(vals[i])
		}
		if err := enc.Encode(map[string]any{"table": table, "row": row}); err != nil {
			return err
		}
	}
	return rows.Err()
}

func plain(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return "base64:" + base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return x
	}
}

package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/api.md from api/openapi.json")

const (
	specPath = "../../api/openapi.json"
	docPath  = "../../docs/api.md"
)

// docs/api.md is what the generator makes of api/openapi.json today.
func TestDocIsCurrent(t *testing.T) {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(raw)
	if err != nil {
		t.Fatalf("Render(%s) = %v", specPath, err)
	}
	if *update {
		if err := os.WriteFile(docPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (generate it with `go test ./internal/apidoc -update`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is stale: regenerate it with `go test ./internal/apidoc -update` " +
			"or `go run ./internal/apidoc -o docs/api.md`")
	}
}

func TestRenderCoversTheSpec(t *testing.T) {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	md, err := Render(raw)
	if err != nil {
		t.Fatal(err)
	}
	root, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	// Every operation has a section, every error code a row, every
	// documented object a heading.
	for _, path := range root.obj("paths").keys {
		for _, m := range root.obj("paths").obj(path).keys {
			if h := "### " + strings.ToUpper(m) + " " + path + "\n"; !strings.Contains(doc, h) {
				t.Errorf("no section %q", strings.TrimSpace(h))
			}
		}
	}
	for _, c := range root.arr("x-error-codes") {
		if row := "| `" + c.(*obj).str("code") + "` |"; !strings.Contains(doc, row) {
			t.Errorf("no error row %q", row)
		}
	}
	for _, p := range root.arr("x-permissions") {
		if row := "| `" + p.(*obj).str("name") + "` |"; !strings.Contains(doc, row) {
			t.Errorf("no permission row %q", row)
		}
	}
	if !strings.Contains(doc, "**Create a customer** · API key with permission [`customers:write`](#permissions)") {
		t.Errorf("operations do not name their permission")
	}
	for _, name := range root.obj("components").obj("schemas").keys {
		if documented(name) && !strings.Contains(doc, "### "+name+"\n") {
			t.Errorf("no object section for %s", name)
		}
	}
	// Request fields appear with their bracket paths and constraints.
	for _, want := range []string{
		"| `payment_method[card][token]` | string | no |",
		"| `payment_method[card][payment_method]` | string | no |",
		"| `statement_descriptor` | string | no | at most 22 characters",
		"| `limit` | query | integer | no | ≥ 1; ≤ 100; default `10` |",
		"| `card[exp_month]` | integer | yes | ≥ 1; ≤ 12 |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
}

func TestRenderRejectsOtherVersions(t *testing.T) {
	for _, in := range []string{`{"openapi": "3.0.3", "paths": {}}`, `[]`, `{`} {
		if _, err := Render([]byte(in)); err == nil {
			t.Errorf("Render(%s) = nil error; want one", in)
		}
	}
}

// A oneOf beside a type only constrains the value (a routing rule needs
// processors or split), so the type names it; a oneOf alone names its
// alternatives.
func TestTypeOf(t *testing.T) {
	tests := []struct{ schema, want string }{
		{`{"type": "object", "oneOf": [{"required": ["processors"]}, {"required": ["split"]}]}`, "object"},
		{`{"type": "array", "items": {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}}`, "array of object"},
		{`{"oneOf": [{"type": "string"}, {"type": "null"}]}`, "string or null"},
		{`{"type": ["integer", "null"]}`, "integer or null"},
	}
	for _, tt := range tests {
		s, err := parse([]byte(tt.schema))
		if err != nil {
			t.Fatal(err)
		}
		r := &renderer{root: &obj{vals: map[string]any{}}}
		if got := r.typeOf(s); got != tt.want {
			t.Errorf("typeOf(%s) = %q; want %q", tt.schema, got, tt.want)
		}
	}
}

// Command apidoc renders the API reference, docs/api.md, from the OpenAPI
// description api/openapi.json: endpoints with their parameters, request
// fields and constraints, responses, the error codes and the objects.
//
//	go run ./internal/apidoc -o docs/api.md
//
// The document is generated so that it can never disagree with the spec the
// server embeds and the tests check responses against; TestDocIsCurrent
// fails when docs/api.md is stale (refresh it with
// `go test ./internal/apidoc -update`). The generator only reads the spec:
// it must never need the server, a network or anything outside the repo.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	spec := flag.String("spec", "api/openapi.json", "the OpenAPI document to render")
	out := flag.String("o", "", "write the Markdown here instead of to standard output")
	flag.Parse()
	raw, err := os.ReadFile(*spec)
	if err != nil {
		fatal(err)
	}
	md, err := Render(raw)
	if err != nil {
		fatal(fmt.Errorf("%s: %w", *spec, err))
	}
	if *out == "" {
		_, err = os.Stdout.Write(md)
	} else {
		err = os.WriteFile(*out, md, 0o644)
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "apidoc:", err)
	os.Exit(1)
}

// obj is a JSON object that remembers its key order, so that the document
// lists fields in the order the spec's author chose.
type obj struct {
	keys []string
	vals map[string]any
}

func (o *obj) get(k string) any {
	if o == nil {
		return nil
	}
	return o.vals[k]
}

func (o *obj) obj(k string) *obj   { v, _ := o.get(k).(*obj); return v }
func (o *obj) str(k string) string { v, _ := o.get(k).(string); return v }
func (o *obj) arr(k string) []any  { v, _ := o.get(k).([]any); return v }
func (o *obj) has(k string) bool   { _, ok := o.vals[k]; return o != nil && ok }

func parse(raw []byte) (*obj, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	root, ok := v.(*obj)
	if !ok {
		return nil, errors.New("the document is not a JSON object")
	}
	return root, nil
}

func parseValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &obj{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return tok, nil
}

// renderer writes the Markdown.
type renderer struct {
	root *obj
	w    bytes.Buffer
}

// Render turns an OpenAPI 3.1 document into the Markdown reference.
func Render(raw []byte) ([]byte, error) {
	root, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if v := root.str("openapi"); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("openapi %q: want 3.1", v)
	}
	r := &renderer{root: root}
	r.document()
	return r.w.Bytes(), nil
}

func (r *renderer) p(format string, args ...any) { fmt.Fprintf(&r.w, format, args...) }

// operation is one method on one path.
type operation struct {
	method, path string
	op           *obj
}

func (r *renderer) operations() []operation {
	var ops []operation
	paths := r.root.obj("paths")
	for _, path := range paths.keys {
		item := paths.obj(path)
		for _, m := range item.keys {
			ops = append(ops, operation{strings.ToUpper(m), path, item.obj(m)})
		}
	}
	return ops
}

func (r *renderer) document() {
	info := r.root.obj("info")
	r.p("<!-- Generated from api/openapi.json by `go run ./internal/apidoc -o docs/api.md`. Do not edit: change the spec and regenerate. -->\n\n")
	r.p("# %s %s\n\n", info.str("title"), info.str("version"))
	if s := info.str("summary"); s != "" {
		r.p("%s\n\n", s)
	}
	r.p("%s\n\n", info.str("description"))
	if servers := r.root.arr("servers"); len(servers) > 0 {
		r.p("Base URL: `%s` (%s)\n\n", servers[0].(*obj).str("url"), servers[0].(*obj).str("description"))
	}

	ops := r.operations()
	r.p("## Endpoints\n\n")
	r.p("| Method | Path | Summary |\n|---|---|---|\n")
	for _, o := range ops {
		r.p("| %s | [`%s`](#%s) | %s |\n", o.method, o.path, anchor(o.method+" "+o.path), cell(o.op.str("summary")))
	}
	r.p("\n")
	r.errors()
	r.permissions()

	tags := r.root.arr("tags")
	for _, t := range tags {
		t := t.(*obj)
		name := t.str("name")
		r.p("## %s\n\n%s\n\n", name, t.str("description"))
		for _, o := range ops {
			if slices.Contains(o.op.arr("tags"), any(name)) {
				r.operation(o)
			}
		}
	}
	r.objects()
}

func (r *renderer) errors() {
	codes := r.root.arr("x-error-codes")
	if len(codes) == 0 {
		return
	}
	r.p("## Errors\n\n")
	r.p("Every error answers `{\"error\": {\"type\", \"code\", \"message\", \"param\", \"request_id\"}}` " +
		"(see [Error](#error)); `param` is present only when one parameter is at fault.\n\n")
	r.p("| Code | HTTP status | Type | Meaning |\n|---|---|---|---|\n")
	for _, c := range codes {
		c := c.(*obj)
		r.p("| `%s` | %s | `%s` | %s |\n", c.str("code"), c.get("status"), c.str("type"), cell(c.str("description")))
	}
	r.p("\n")
}

// permissions lists what API keys may be allowed to do (x-permissions).
func (r *renderer) permissions() {
	perms := r.root.arr("x-permissions")
	if len(perms) == 0 {
		return
	}
	r.p("## Permissions\n\n")
	r.p("Each operation needs one permission of the API key (shown with the operation); a key without it gets " +
		"403 `permission_denied` naming it.\n\n")
	r.p("| Permission | In a new key by default | Allows |\n|---|---|---|\n")
	for _, p := range perms {
		p := p.(*obj)
		def := "no"
		if p.get("default") == true {
			def = "yes"
		}
		r.p("| `%s` | %s | %s |\n", p.str("name"), def, cell(p.str("description")))
	}
	r.p("\n")
}

func (r *renderer) operation(o operation) {
	op := o.op
	r.p("### %s %s\n\n", o.method, o.path)
	r.p("**%s**", op.str("summary"))
	if op.has("security") && len(op.arr("security")) == 0 {
		r.p(" · no API key")
	} else {
		r.p(" · API key")
		if perm := op.str("x-permission"); perm != "" {
			r.p(" with permission [`%s`](#permissions)", perm)
		}
	}
	r.p(" · operation `%s`\n\n", op.str("operationId"))
	if d := op.str("description"); d != "" {
		r.p("%s\n\n", d)
	}

	if params := op.arr("parameters"); len(params) > 0 {
		r.p("Parameters:\n\n| Name | In | Type | Required | Constraints | Description |\n|---|---|---|---|---|---|\n")
		for _, p := range params {
			p := r.deref(p.(*obj))
			sch := p.obj("schema")
			req := "no"
			if p.get("required") == true {
				req = "yes"
			}
			desc := p.str("description")
			if desc == "" {
				desc = r.deref(sch).str("description")
			}
			r.p("| `%s` | %s | %s | %s | %s | %s |\n", p.str("name"), p.str("in"), r.typeOf(sch), req,
				cell(r.constraints(sch)), cell(desc))
		}
		r.p("\n")
	}

	if body := op.obj("requestBody"); body != nil {
		media := body.obj("content").obj("application/json")
		required := "required"
		if body.get("required") != true {
			required = "optional: an empty body is the same as `{}`"
		}
		r.p("Request body (`application/json`, %s). Unknown fields are refused.\n\n", required)
		r.p("| Field | Type | Required | Constraints | Description |\n|---|---|---|---|---|\n")
		r.fields("", media.obj("schema"))
		r.p("\n")
		if ex := media.get("example"); ex != nil {
			b, _ := json.MarshalIndent(plain(ex), "", "  ")
			r.p("Example:\n\n```json\n%s\n```\n\n", b)
		}
		if exs := media.obj("examples"); exs != nil {
			for _, name := range exs.keys {
				ex := exs.obj(name)
				b, _ := json.MarshalIndent(plain(ex.get("value")), "", "  ")
				r.p("Example (%s):\n\n```json\n%s\n```\n\n", ex.get("summary"), b)
			}
		}
	}

	r.p("Responses:\n\n| Status | Body | Description |\n|---|---|---|\n")
	resps := op.obj("responses")
	for _, status := range resps.keys {
		resp := r.deref(resps.obj(status))
		bodyType := r.typeOf(resp.obj("content").obj("application/json").obj("schema"))
		desc := resp.str("description")
		if h := resp.obj("headers"); h != nil {
			var extra []string
			for _, k := range h.keys {
				if k != "Request-Id" {
					extra = append(extra, "`"+k+"`")
				}
			}
			if len(extra) > 0 {
				desc += " Headers: " + strings.Join(extra, ", ") + "."
			}
		}
		r.p("| %s | %s | %s |\n", status, bodyType, cell(desc))
	}
	r.p("\n")
}

// fields writes one row per field of an object schema, descending into
// inline objects with the bracket notation errors use in `param`. The
// third column says whether the field is required (in a request) or always
// present (in a response).
func (r *renderer) fields(prefix string, sch *obj) {
	sch = r.deref(sch)
	required := map[string]bool{}
	for _, k := range sch.arr("required") {
		required[k.(string)] = true
	}
	props := sch.obj("properties")
	for _, name := range props.keys {
		p := props.obj(name)
		path := name
		if prefix != "" {
			path = prefix + "[" + name + "]"
		}
		req := "no"
		if required[name] {
			req = "yes"
		}
		desc := p.str("description")
		if desc == "" {
			desc = r.deref(p).str("description")
		}
		typ := r.typeOf(p)
		inline := r.deref(p).obj("properties") != nil
		if inline {
			typ = "object"
		}
		r.p("| `%s` | %s | %s | %s | %s |\n", path, typ, req, cell(r.constraints(p)), cell(desc))
		if inline {
			r.fields(path, p)
		}
	}
}

// objects documents the component schemas that responses use.
func (r *renderer) objects() {
	schemas := r.root.obj("components").obj("schemas")
	r.p("## Objects\n\n")
	for _, name := range schemas.keys {
		if !documented(name) {
			continue
		}
		s := schemas.obj(name)
		r.p("### %s\n\n", name)
		if d := s.str("description"); d != "" {
			r.p("%s\n\n", d)
		}
		if s.obj("properties") != nil {
			r.p("| Field | Type | Always present | Constraints | Description |\n|---|---|---|---|---|\n")
			r.fields("", s)
			r.p("\n")
			continue
		}
		r.p("Type: %s", r.typeOf(s))
		if c := r.constraints(s); c != "" {
			r.p("; %s", c)
		}
		r.p(".\n\n")
	}
}

// documented says whether a component schema gets a section under
// Objects. Request bodies are described with their endpoints, and small
// request-only schemas in place.
func documented(name string) bool {
	return !strings.HasSuffix(name, "Request") && !strings.HasSuffix(name, "Field")
}

// typeOf names a schema's type: a link for a $ref, "array of X", "A or B".
func (r *renderer) typeOf(s *obj) string {
	if s == nil {
		return "—"
	}
	if ref := s.str("$ref"); ref != "" {
		name := refName(ref)
		if !documented(name) {
			return r.typeOf(r.deref(s))
		}
		return "[" + name + "](#" + anchor(name) + ")"
	}
	if c, ok := s.vals["const"]; ok {
		return "`" + jsonText(c) + "`"
	}
	// A oneOf beside a type only constrains it (a rule needs processors
	// or split): the type names it. Without a type, the alternatives do.
	for _, k := range []string{"oneOf", "anyOf"} {
		if alts := s.arr(k); len(alts) > 0 && s.get("type") == nil {
			var names []string
			for _, a := range alts {
				names = append(names, r.typeOf(a.(*obj)))
			}
			return strings.Join(names, " or ")
		}
	}
	var types []string
	switch t := s.get("type").(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	}
	for i, t := range types {
		switch {
		case t == "array":
			types[i] = "array of " + r.typeOf(s.obj("items"))
		case t == "object" && s.obj("additionalProperties") != nil:
			types[i] = "object of " + r.typeOf(s.obj("additionalProperties"))
		}
	}
	if len(types) == 0 {
		return "any"
	}
	return strings.Join(types, " or ")
}

// constraints lists what a value must satisfy, in words.
func (r *renderer) constraints(s *obj) string {
	if s == nil {
		return ""
	}
	var out []string
	if ref := s.str("$ref"); ref != "" {
		if !documented(refName(ref)) {
			out = append(out, r.constraints(r.deref(s)))
		}
		// A referenced enum is shown in place: it is what a client sends.
		t := r.deref(s)
		if t.arr("enum") != nil && s.get("default") == nil {
			return r.constraints(t)
		}
		if t.arr("enum") != nil {
			out = append(out, r.constraints(t))
		}
	}
	if e := s.arr("enum"); e != nil {
		var vs []string
		for _, v := range e {
			vs = append(vs, "`"+jsonText(v)+"`")
		}
		out = append(out, "one of "+strings.Join(vs, ", "))
	}
	add := func(key, format string) {
		if v, ok := s.vals[key]; ok {
			out = append(out, fmt.Sprintf(format, jsonText(v)))
		}
	}
	add("minimum", "≥ %s")
	add("maximum", "≤ %s")
	switch minL, maxL := s.get("minLength"), s.get("maxLength"); {
	case minL != nil && maxL != nil:
		out = append(out, fmt.Sprintf("%s to %s characters", jsonText(minL), jsonText(maxL)))
	case minL != nil && jsonText(minL) == "1":
		out = append(out, "not empty")
	case minL != nil:
		out = append(out, fmt.Sprintf("at least %s characters", jsonText(minL)))
	case maxL != nil:
		out = append(out, fmt.Sprintf("at most %s characters", jsonText(maxL)))
	}
	add("pattern", "matches `%s`")
	add("format", "format %s")
	add("maxProperties", "at most %s keys")
	add("default", "default `%s`")
	if pn := s.obj("propertyNames"); pn != nil {
		if c := r.constraints(pn); c != "" {
			out = append(out, "keys: "+c)
		}
	}
	if ap := s.obj("additionalProperties"); ap != nil {
		if c := r.constraints(ap); c != "" {
			out = append(out, "values: "+c)
		}
	}
	if ex := s.arr("examples"); len(ex) > 0 {
		var vs []string
		for _, v := range ex {
			vs = append(vs, "`"+jsonText(v)+"`")
		}
		out = append(out, "e.g. "+strings.Join(vs, ", "))
	}
	return strings.Join(out, "; ")
}

// deref follows a local $ref ("#/components/...").
func (r *renderer) deref(s *obj) *obj {
	for s != nil && s.str("$ref") != "" {
		ref := s.str("$ref")
		var cur any = r.root
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			o, _ := cur.(*obj)
			cur = o.get(strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
		}
		s, _ = cur.(*obj)
	}
	return s
}

func refName(ref string) string { return ref[strings.LastIndex(ref, "/")+1:] }

// anchor is GitHub's heading anchor for a heading text.
func anchor(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case c == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// cell makes text safe in a table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}

func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(plain(v))
	return string(b)
}

// plain converts an ordered tree back to encoding/json values, for
// examples; key order is kept by encoding through an ordered writer.
func plain(v any) any {
	switch x := v.(type) {
	case *obj:
		return orderedJSON{x}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

type orderedJSON struct{ o *obj }

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(plain(o.o.vals[k]))
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

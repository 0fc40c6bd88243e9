package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/payloom/payloom"
)

// maxDepth bounds the nesting of request bodies. The deepest body the API
// accepts has three levels (payment_method[card][token]); anything much
// deeper is garbage or an attack on the recursive decoder.
const maxDepth = 16

// parseJSON parses a request body into a generic tree: map[string]any,
// []any, string, json.Number, bool and nil. Unlike encoding/json it rejects
// duplicate object keys instead of keeping the last one: two parsers that
// disagree about which duplicate wins (a proxy, a log pipeline, us) are a
// classic smuggling vector, and the idempotency fingerprint must describe
// exactly what is executed.
//
// Errors never quote the input: a syntax error in a tokenization request
// would otherwise echo card digits into the response and the logs.
func parseJSON(body []byte) (any, error) {
	if !utf8.Valid(body) {
		return nil, &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := parseValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body has data after the JSON value"}
	}
	return v, nil
}

// syntaxError turns any failure of the tokenizer into one generic message.
// encoding/json's own messages quote the offending character and the byte
// offset; neither helps a client enough to risk echoing card data.
func syntaxError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body is not valid JSON (it ends too early)"}
	}
	return &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body is not valid JSON"}
}

func parseValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body is nested too deeply"}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxError(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, syntaxError(nil)
				}
				p := childPath(path, k)
				if _, dup := obj[k]; dup {
					return nil, &payloom.Error{Code: payloom.CodeInvalidJSON, Param: p,
						Message: "request body has a duplicate key"}
				}
				v, err := parseValue(dec, p, depth+1)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, syntaxError(err)
			}
			return obj, nil
		case '[':
			arr := []any{}
			for i := 0; dec.More(); i++ {
				v, err := parseValue(dec, path+"["+strconv.Itoa(i)+"]", depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, syntaxError(err)
			}
			return arr, nil
		}
		return nil, syntaxError(nil)
	default:
		return t, nil // string, json.Number, bool, nil
	}
}

// canonicalJSON re-encodes a parsed body with sorted object keys and no
// insignificant whitespace, so that two bodies meaning the same thing have
// the same idempotency fingerprint. Numbers keep their literal text.
func canonicalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// A tree made by parseJSON always encodes.
		panic("api: canonical encoding failed: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// fingerprint identifies a request for the idempotency layer: a reuse of an
// Idempotency-Key with another fingerprint is a conflict.
func fingerprint(method, path string, canonicalBody []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(canonicalBody)
	return hex.EncodeToString(h.Sum(nil))
}

// childPath appends key to a parameter path in the API's bracket notation:
// "" + "amount" = "amount", "payment_method" + "card" =
// "payment_method[card]".
func childPath(path, key string) string {
	key = displayKey(key)
	if path == "" {
		return key
	}
	return path + "[" + key + "]"
}

// displayKey makes a client-chosen object key safe to show in an error's
// param: long keys are cut and every run of three or more digits is masked,
// so that a card number or CVC sent as a key (by mistake or to probe us) is
// never echoed into a response or a log line. Keys the API defines contain
// no such runs, so the params of known fields are unaffected.
func displayKey(key string) string {
	const maxKey = 64
	if len(key) > maxKey {
		cut := maxKey
		for cut > 0 && !utf8.RuneStart(key[cut]) {
			cut--
		}
		key = key[:cut] + "..."
	}
	var b strings.Builder
	for i := 0; i < len(key); {
		j := i
		for j < len(key) && key[j] >= '0' && key[j] <= '9' {
			j++
		}
		switch {
		case j-i >= 3:
			b.WriteString(strings.Repeat("*", j-i))
			i = j
		case j > i:
			b.WriteString(key[i:j])
			i = j
		default:
			b.WriteByte(key[i])
			i++
		}
	}
	return b.String()
}

// decodeInto fills dst (a pointer to a struct) from a parsed JSON object,
// strictly: every key must name a field (matched exactly, not
// case-insensitively as encoding/json does), every value must have the
// field's type, and null is refused (omit a field instead). Errors are
// validation errors whose Param is the full bracket path of the offending
// key, e.g. "payment_method[card][foo]". Messages never contain values.
//
// Supported field types: string kinds (including payloom.Secret), int and
// int64 kinds (JSON integers only: 10.0 and 1e3 are refused), bool,
// pointers to those and to structs, structs, map[string]string and slices
// of strings or structs (an element's param is "path[i]").
func decodeInto(tree any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("api: decodeInto needs a pointer to a struct")
	}
	if _, ok := tree.(map[string]any); !ok {
		return &payloom.Error{Code: payloom.CodeInvalidJSON, Message: "request body must be a JSON object"}
	}
	return decodeValue(tree, "", rv.Elem())
}

func decodeValue(node any, path string, v reflect.Value) error {
	if node == nil {
		return typeError(path, v.Type())
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if err := decodeValue(node, path, elem.Elem()); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	case reflect.Struct:
		obj, ok := node.(map[string]any)
		if !ok {
			return typeError(path, v.Type())
		}
		fields := structFields(v.Type())
		for _, k := range sortedKeys(obj) {
			idx, ok := fields[k]
			if !ok {
				return &payloom.Error{Code: payloom.CodeValidation, Param: childPath(path, k),
					Message: "unknown parameter"}
			}
			if err := decodeValue(obj[k], childPath(path, k), v.Field(idx)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			panic("api: unsupported map type " + v.Type().String())
		}
		obj, ok := node.(map[string]any)
		if !ok {
			return typeError(path, v.Type())
		}
		m := reflect.MakeMapWithSize(v.Type(), len(obj))
		for _, k := range sortedKeys(obj) {
			s, ok := obj[k].(string)
			if !ok {
				return typeError(childPath(path, k), v.Type().Elem())
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), reflect.ValueOf(s).Convert(v.Type().Elem()))
		}
		v.Set(m)
		return nil
	case reflect.Slice:
		if k := v.Type().Elem().Kind(); k != reflect.String && k != reflect.Struct {
			panic("api: unsupported slice type " + v.Type().String())
		}
		arr, ok := node.([]any)
		if !ok {
			return typeError(path, v.Type())
		}
		sl := reflect.MakeSlice(v.Type(), len(arr), len(arr))
		for i, e := range arr {
			if err := decodeValue(e, path+"["+strconv.Itoa(i)+"]", sl.Index(i)); err != nil {
				return err
			}
		}
		v.Set(sl)
		return nil
	case reflect.String:
		s, ok := node.(string)
		if !ok {
			return typeError(path, v.Type())
		}
		v.SetString(s)
		return nil
	case reflect.Int, reflect.Int64:
		n, ok := node.(json.Number)
		if !ok {
			return typeError(path, v.Type())
		}
		i, err := strconv.ParseInt(string(n), 10, v.Type().Bits())
		if err != nil {
			return &payloom.Error{Code: payloom.CodeValidation, Param: path,
				Message: path + " must be an integer in range"}
		}
		v.SetInt(i)
		return nil
	case reflect.Bool:
		b, ok := node.(bool)
		if !ok {
			return typeError(path, v.Type())
		}
		v.SetBool(b)
		return nil
	}
	panic("api: unsupported field type " + v.Type().String())
}

func typeError(path string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	what := "a string"
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		what = "an object"
	case reflect.Int, reflect.Int64:
		what = "an integer"
	case reflect.Bool:
		what = "a boolean"
	case reflect.Slice:
		what = "an array"
	}
	name := path
	if name == "" {
		name = "request body"
	}
	return &payloom.Error{Code: payloom.CodeValidation, Param: path, Message: name + " must be " + what}
}

// structFields maps JSON names to field indexes. Every exported field of a
// request struct must carry a json tag: the tag is the wire name.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			panic("api: request field " + t.String() + "." + f.Name + " has no json name")
		}
		m[name] = i
	}
	return m
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// diff lists how got differs from want, one line per field path. Times
// compare by instant, and a non-zero got time must be in UTC. A nil map or
// slice differs from an empty one: the contract reads nil back as empty,
// and want says which is expected.
func diff(want, got any) []string {
	var out []string
	diffValue(&out, reflect.TypeOf(want).String(), reflect.ValueOf(want), reflect.ValueOf(got))
	return out
}

func diffValue(out *[]string, path string, w, g reflect.Value) {
	add := func(format string, args ...any) {
		*out = append(*out, path+": "+fmt.Sprintf(format, args...))
	}
	if w.Type() != g.Type() {
		add("type %s; want %s", g.Type(), w.Type())
		return
	}
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		switch {
		case !wt.Equal(gt):
			add("got %s; want %s", gt.Format(time.RFC3339Nano), wt.Format(time.RFC3339Nano))
		case !gt.IsZero() && gt.Location() != time.UTC:
			add("got location %q; want UTC", gt.Location())
		}
		return
	}
	switch w.Kind() {
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				add("got %s; want %s", show(g), show(w))
			}
			return
		}
		diffValue(out, path, w.Elem(), g.Elem())
	case reflect.Struct:
		for i := range w.NumField() {
			f := w.Type().Field(i)
			if f.IsExported() {
				diffValue(out, path+"."+f.Name, w.Field(i), g.Field(i))
			}
		}
	case reflect.Slice:
		if w.IsNil() != g.IsNil() {
			add("got %s; want %s", show(g), show(w))
			return
		}
		if w.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(w.Bytes(), g.Bytes()) {
				add("got %q; want %q", g.Bytes(), w.Bytes())
			}
			return
		}
		if w.Len() != g.Len() {
			add("got %d elements; want %d", g.Len(), w.Len())
			return
		}
		for i := range w.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case reflect.Map:
		if w.IsNil() != g.IsNil() {
			add("got %s; want %s", show(g), show(w))
			return
		}
		keys := map[string]reflect.Value{}
		for _, k := range append(w.MapKeys(), g.MapKeys()...) {
			keys[fmt.Sprint(k.Interface())] = k
		}
		names := make([]string, 0, len(keys))
		for n := range keys {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			k := keys[n]
			wv, gv := w.MapIndex(k), g.MapIndex(k)
			switch {
			case !wv.IsValid():
				add("unexpected key %q = %s", n, show(gv))
			case !gv.IsValid():
				add("missing key %q (want %s)", n, show(wv))
			default:
				diffValue(out, fmt.Sprintf("%s[%q]", path, n), wv, gv)
			}
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			add("got %s; want %s", show(g), show(w))
		}
	}
}

// show prints a value for a failure message, telling nil from empty.
func show(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		if v.IsNil() {
			return "nil"
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		return "&" + show(v.Elem())
	case reflect.String:
		return fmt.Sprintf("%q", v.String())
	case reflect.Slice:
		if v.Len() == 0 {
			return "empty " + v.Type().String()
		}
	case reflect.Map:
		if v.Len() == 0 {
			return "empty " + v.Type().String()
		}
	}
	return fmt.Sprintf("%+v", v.Interface())
}

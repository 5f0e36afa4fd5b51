package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// wantField checks that err is a 400 naming field (ok when field is "").
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var we *Error
	if !errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Field != field || we.Message == "" {
		t.Fatalf("err = %#v, want a 400 naming %q", err, field)
	}
}

func TestObject(t *testing.T) {
	tests := []struct {
		name, raw, path, field string
	}{
		{"ok/required and optional", `{"a":1,"b":"x"}`, "", ""},
		{"ok/optional left out", `{"a":1}`, "", ""},
		{"err/not JSON", `{"a":`, "x", "x"},
		{"err/array", `[1]`, "x", "x"},
		{"err/null", `null`, "x", "x"},
		{"err/unknown field, first in order", `{"a":1,"z":1,"c":2}`, "x", "x.c"},
		{"err/unknown field at the top", `{"a":1,"c":2}`, "", "c"},
		{"err/required missing", `{"b":"x"}`, "x", "x.a"},
		{"err/required null", `{"a":null}`, "", "a"},
		{"err/not an object at the top", `[1]`, "", "body"},
		{"err/duplicate key", `{"a":1,"b":"x","a":2}`, "x", "x.a"},
		{"err/duplicate key at the top", `{"a":1,"a":1}`, "", "a"},
		{"err/duplicate key spelt with an escape", `{"a":1,"\u0061":2}`, "", "a"},
		{"err/unknown key echoed short", `{"a":1,"` + strings.Repeat("k", 100) + `":1}`, "", strings.Repeat("k", 64) + "…"},
		{"err/empty key named", `{"a":1,"":1}`, "x", `x.""`},
		{"err/unknown key with NUL echoed printable", `{"a":1,"k\u0000":1}`, "", "k\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Object(json.RawMessage(tt.raw), tt.path, []string{"a"}, []string{"b"})
			wantField(t, err, tt.field)
		})
	}
}

func TestArray(t *testing.T) {
	tests := []struct {
		name, raw, field string
	}{
		{"ok/one", `[1]`, ""},
		{"ok/at the limit", `[1,2,3]`, ""},
		{"err/empty", `[]`, "items"},
		{"err/over the limit", `[1,2,3,4]`, "items"},
		{"err/null", `null`, "items"},
		{"err/not an array", `"x"`, "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Array(json.RawMessage(tt.raw), "items", 1, 3)
			wantField(t, err, tt.field)
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name     string
		raw      string // the value of key "s"; "" leaves the key out
		min, max int
		want     string
		field    string
	}{
		{"ok/trimmed", `"  Ada "`, 1, 10, "Ada", ""},
		{"ok/optional missing", ``, 0, 10, "", ""},
		{"ok/optional null", `null`, 0, 10, "", ""},
		{"ok/exact length", `"USD"`, 3, 3, "USD", ""},
		{"err/required missing", ``, 1, 10, "", "p.s"},
		{"err/not a string", `7`, 1, 10, "", "p.s"},
		{"err/blank", `" "`, 1, 10, "", "p.s"},
		{"err/too short", `"US"`, 3, 3, "", "p.s"},
		{"err/too long", `"USDX"`, 3, 3, "", "p.s"},
		{"err/NUL", `"a\u0000b"`, 1, 10, "", "p.s"},
		{"err/newline", `"a\nb"`, 1, 10, "", "p.s"},
		{"err/not UTF-8", "\"a\xffb\"", 1, 10, "", "p.s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			if tt.raw != "" {
				o["s"] = json.RawMessage(tt.raw)
			}
			got, err := String(o, "s", "p.", tt.min, tt.max)
			wantField(t, err, tt.field)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInteger(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		want  int64
		field string
	}{
		{"ok/whole", `2`, 2, ""},
		{"ok/lowest", `1`, 1, ""},
		{"ok/highest", `1000`, 1000, ""},
		{"err/missing", ``, 0, "p.n"},
		{"err/null", `null`, 0, "p.n"},
		{"err/zero", `0`, 0, "p.n"},
		{"err/negative", `-1`, 0, "p.n"},
		{"err/over", `1001`, 0, "p.n"},
		{"err/fractional", `1.5`, 0, "p.n"},
		{"err/exponent", `2e3`, 0, "p.n"},
		{"err/quoted", `"2"`, 0, "p.n"},
		{"err/beyond int64", `99999999999999999999`, 0, "p.n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			if tt.raw != "" {
				o["n"] = json.RawMessage(tt.raw)
			}
			got, err := Integer(o, "n", "p.", 1, 1000)
			wantField(t, err, tt.field)
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// Nested objects are checked where they are decoded (Object per level);
// CheckDuplicateKeys, which ReadJSONBody runs, looks at every depth.
func TestCheckDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"ok/none", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{"ok/not an object", `[1,2,"a","a"]`, ""},
		{"ok/same key in sibling objects", `[{"k":1},{"k":1}]`, ""},
		{"err/top", `{"userId":"a","userId":"b"}`, "userId"},
		{"err/nested", `{"shippingAddress":{"name":"a","city":"x","name":"b"}}`, "shippingAddress.name"},
		{"err/in an array", `{"items":[{"sku":"a"},{"sku":"a","qty":1,"sku":"b"}]}`, "items[1].sku"},
		{"err/deep in arrays", `[[{"x":[{"y":1,"y":2}]}]]`, "[0][0].x[0].y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantField(t, CheckDuplicateKeys([]byte(tt.body)), tt.field)
		})
	}
}

func TestReadJSONBodyNamesWhatIsWrong(t *testing.T) {
	tests := []struct {
		name, body string
		code       int
		field      string
	}{
		{"ok/object", `{"a":1}`, 0, ""},
		{"err/not JSON", `{"a":`, 400, "body"},
		{"err/too large", `{"a":"` + strings.Repeat("x", 100) + `"}`, 413, "body"},
		{"err/duplicate key", `{"a":{"b":1,"b":2}}`, 400, "a.b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			_, err := ReadJSONBody(r, 64)
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var we *Error
			if !errors.As(err, &we) || we.Status != tt.code || we.Field != tt.field {
				t.Fatalf("err = %#v, want %d naming %q", err, tt.code, tt.field)
			}
		})
	}
}

func TestQueryAndPathValue(t *testing.T) {
	tests := []struct {
		name, target, field string
	}{
		{"ok/plain", "/x/SKU-1?orderId=o-1", ""},
		{"err/query missing", "/x/SKU-1", "orderId"},
		{"err/query NUL", "/x/SKU-1?orderId=a%00b", "orderId"},
		{"err/query not UTF-8", "/x/SKU-1?orderId=a%FFb", "orderId"},
		{"err/query too long", "/x/SKU-1?orderId=" + strings.Repeat("o", 129), "orderId"},
		{"err/path NUL", "/x/a%00b?orderId=o-1", "sku"},
		{"err/path not UTF-8", "/x/%FF?orderId=o-1", "sku"},
		{"err/path too long", "/x/" + strings.Repeat("s", 65) + "?orderId=o-1", "sku"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			mux := http.NewServeMux()
			mux.HandleFunc("GET /x/{sku}", func(w http.ResponseWriter, r *http.Request) {
				if _, err = PathValue(r, "sku", 64); err == nil {
					_, err = Query(r, "orderId", 128)
				}
			})
			mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tt.target, nil))
			wantField(t, err, tt.field)
		})
	}
}

package notification

import (
	"errors"
	"testing"

	"github.com/stampede-dev/stampede/platform/web"
)

func TestParseContact(t *testing.T) {
	for _, tc := range []struct {
		name, user, body, field string
	}{
		{"ok/all", "u-1", `{"email":"a@example.test","phone":"+15551234567","pushToken":"tok"}`, ""},
		{"ok/email only", "u-1", `{"email":"a@example.test"}`, ""},
		{"ok/nothing", "u-1", `{}`, ""},
		{"err/email", "u-1", `{"email":"not-an-email"}`, "email"},
		{"err/phone", "u-1", `{"phone":"555-1234"}`, "phone"},
		{"err/push token", "u-1", `{"pushToken":"a b"}`, "pushToken"},
		{"err/type", "u-1", `{"email":5}`, "email"},
		{"err/unknown field", "u-1", `{"fax":"1"}`, "fax"},
		{"err/user id", "u 1", `{}`, "userId"},
		{"err/NUL in email", "u-1", `{"email":"a\u0000@example.test"}`, "email"},
		{"err/NUL in push token", "u-1", `{"pushToken":"t\u0000"}`, "pushToken"},
	} {
		_, err := ParseContact(tc.user, []byte(tc.body))
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var we *web.Error
		if !errors.As(err, &we) || we.Field != tc.field {
			t.Errorf("%s: err = %v, want field %q", tc.name, err, tc.field)
		}
	}
}

package orders

import (
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPI is the Orders service's contract. This module cannot import the
// platform, so it keeps its own copy of the status list and checks it here.
const openAPI = "../../platform/order/openapi.yaml"

// TestStatusesMatchOpenAPI fails when Statuses and the Status enum of the
// Orders API's OpenAPI document differ, in members or in order.
func TestStatusesMatchOpenAPI(t *testing.T) {
	b, err := os.ReadFile(openAPI)
	if err != nil {
		t.Fatalf("read the Orders contract: %v", err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Status struct {
					Enum []string `yaml:"enum"`
				} `yaml:"Status"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPI, err)
	}
	want := doc.Components.Schemas.Status.Enum
	if len(want) == 0 {
		t.Fatalf("%s: no components.schemas.Status.enum", openAPI)
	}
	if !slices.Equal(Statuses, want) {
		t.Errorf("Statuses = %v\nwant the Status enum of %s: %v", Statuses, openAPI, want)
	}
	for _, s := range []string{StatusConfirmed, "pending", "delivered", "failed", "cancelled"} {
		if !slices.Contains(want, s) {
			t.Errorf("status %q used by the client is not in %s", s, openAPI)
		}
	}
}

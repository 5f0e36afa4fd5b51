package order

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the Orders API, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Command k6 is k6 with the k6/x/orders extension compiled in: the main
// that xk6 would generate, kept in the repository because the module proxy
// here refuses the xk6 builder.
package main

import (
	k6cmd "go.k6.io/k6/cmd"

	_ "github.com/stampede-dev/stampede/xk6-orders"
)

func main() {
	k6cmd.Execute()
}

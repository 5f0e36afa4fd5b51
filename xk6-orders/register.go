// Package xk6orders registers the k6/x/orders module; it does nothing else.
// The module itself lives in the orders package.
package xk6orders

import (
	"go.k6.io/k6/js/modules"

	"github.com/stampede-dev/stampede/xk6-orders/orders"
)

func init() {
	modules.Register("k6/x/orders", orders.New())
}

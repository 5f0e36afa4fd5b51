package bench

import (
	"time"

	"github.com/stampede-dev/stampede/harness/stats"
)

// Dist is stats.Dist.
//
// Deprecated: use stats.Dist; kept while harness/chaos and harness/report
// (outside this change) still name it here.
type Dist = stats.Dist

// Summarise is stats.Summarise.
//
// Deprecated: use stats.Summarise; kept while harness/chaos and
// harness/report (outside this change) still call it here.
func Summarise(ds []time.Duration) Dist { return stats.Summarise(ds) }

package chaos

import (
	"bytes"
	"github.com/stampede-dev/stampede/harness/verify"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

func bucketSeries(le string, vals ...float64) promSeries {
	s := promSeries{Metric: map[string]string{"le": le}}
	for i, v := range vals {
		s.Values = append(s.Values, [2]any{float64(1000 + 2*i), formatFloat(v)})
	}
	return s
}

func formatFloat(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func TestLagFromHistogram(t *testing.T) {
	// Three steps: all under 50 ms; one record in (0.075, 0.1]; one in (0.25, 0.5]; then nothing consumed.
	series := []promSeries{
		bucketSeries("0.05", 10, 9, 9, 0),
		bucketSeries("0.075", 10, 9, 9, 0),
		bucketSeries("0.1", 10, 10, 9, 0),
		bucketSeries("0.25", 10, 10, 9, 0),
		bucketSeries("0.5", 10, 10, 10, 0),
		bucketSeries("+Inf", 10, 10, 10, 0),
	}
	got := LagFromHistogram(series, 100*time.Millisecond)
	want := []time.Duration{50 * time.Millisecond, 100*time.Millisecond - time.Microsecond, 500 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("got %d samples %+v, want %d (a step with nothing consumed has no sample)", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Lag != want[i] {
			t.Errorf("step %d: got %s, want %s", i, got[i].Lag, want[i])
		}
	}
	if !got[0].At.Equal(time.Unix(1000, 0)) {
		t.Errorf("first sample at %s, want the step's time", got[0].At)
	}
}

func TestEncodeWriteRequest(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	b, err := snappy.Decode(nil, EncodeWriteRequest([]Series{{Labels: map[string]string{"fault": "x", "__name__": FaultMetric}, Value: 1, At: at}}))
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	// WriteRequest{1: TimeSeries{1: Label{1,2}..., 2: Sample{1: double, 2: int64}}}
	num, typ, n := protowire.ConsumeTag(b)
	if num != 1 || typ != protowire.BytesType {
		t.Fatalf("want field 1 (timeseries), got %d/%d", num, typ)
	}
	ts, _ := protowire.ConsumeBytes(b[n:])
	var labels []string
	var value float64
	var ms int64
	for len(ts) > 0 {
		num, _, n := protowire.ConsumeTag(ts)
		body, m := protowire.ConsumeBytes(ts[n:])
		ts = ts[n+m:]
		for len(body) > 0 {
			f, typ, k := protowire.ConsumeTag(body)
			body = body[k:]
			switch {
			case num == 1 && typ == protowire.BytesType:
				s, k := protowire.ConsumeString(body)
				labels = append(labels, s)
				body = body[k:]
			case num == 2 && f == 1:
				v, k := protowire.ConsumeFixed64(body)
				value = math.Float64frombits(v)
				body = body[k:]
			case num == 2 && f == 2:
				v, k := protowire.ConsumeVarint(body)
				ms = int64(v)
				body = body[k:]
			default:
				t.Fatalf("unexpected field %d.%d", num, f)
			}
		}
	}
	if want := []string{"__name__", FaultMetric, "fault", "x"}; !bytes.Equal([]byte(join(labels)), []byte(join(want))) {
		t.Errorf("labels %v, want %v (sorted by name)", labels, want)
	}
	if value != 1 || ms != at.UnixMilli() {
		t.Errorf("sample %v at %d, want 1 at %d", value, ms, at.UnixMilli())
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for _, x := range s {
		b.WriteString(x + "|")
	}
	return b.String()
}

func TestGateSeries(t *testing.T) {
	at := time.Unix(1700000000, 0)
	got := GateSeries("r1", []verify.Gate{{Name: "lost orders", Pass: true}, {Name: "consumer lag", Pass: false}}, at)
	if len(got) != 2 {
		t.Fatalf("got %d series, want 2", len(got))
	}
	for i, want := range []struct {
		gate string
		v    float64
	}{{"lost orders", 1}, {"consumer lag", 0}} {
		s := got[i]
		if s.Labels["__name__"] != GateMetric || s.Labels["gate"] != want.gate || s.Labels["run"] != "r1" || s.Labels["job"] != "chaos" || s.Value != want.v || !s.At.Equal(at) {
			t.Errorf("series %d = %+v, want gate %q value %v", i, s, want.gate, want.v)
		}
	}
}

// The histogram proves only "at most the bucket's bound": a maximum in the
// bucket that ends exactly at the limit passes the lag gate, one in the
// next bucket fails it.
func TestHistogramBucketAtTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		top  string // the highest bucket with a record
		pass bool
	}{
		{"ok/bucket ending at the limit", "0.1", true},
		{"err/the next bucket", "0.25", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var series []promSeries
			for _, le := range []string{"0.05", "0.075", "0.1", "0.25", "+Inf"} {
				n := 9.0
				if le == "+Inf" || (le == "0.25" && tc.top == "0.1") || le == tc.top {
					n = 10
				}
				series = append(series, bucketSeries(le, n))
			}
			lag := LagFromHistogram(series, 100*time.Millisecond)
			gates, _ := verify.Evaluate(verify.Input{Lag: map[string][]verify.LagSample{SourceHistogram: lag}, K6Passed: true, Limits: verify.DefaultLimits})
			for _, g := range gates {
				if strings.HasPrefix(g.Name, "consumer lag") && g.Pass != tc.pass {
					t.Fatalf("%s: pass %v (%s), want %v", g.Name, g.Pass, g.Value, tc.pass)
				}
			}
		})
	}
}

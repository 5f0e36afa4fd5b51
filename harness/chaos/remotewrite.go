package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// FaultMetric is the series the harness pushes so dashboards can shade the
// fault windows: 1 while the fault is active, 0 otherwise.
const FaultMetric = "stampede_chaos_fault_active"

// Series is one remote-write time series with one sample.
type Series struct {
	Labels map[string]string
	Value  float64
	At     time.Time
}

// EncodeWriteRequest encodes a Prometheus remote-write WriteRequest
// (prompb: WriteRequest{1: repeated TimeSeries}, TimeSeries{1: repeated
// Label, 2: repeated Sample}, Label{1: name, 2: value}, Sample{1: double
// value, 2: int64 timestamp ms}) and compresses it with snappy, as the
// protocol wants. Labels are sorted by name, as Prometheus requires.
func EncodeWriteRequest(series []Series) []byte {
	var req []byte
	for _, s := range series {
		var ts []byte
		names := make([]string, 0, len(s.Labels))
		for n := range s.Labels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.BytesType)
			l = protowire.AppendString(l, n)
			l = protowire.AppendTag(l, 2, protowire.BytesType)
			l = protowire.AppendString(l, s.Labels[n])
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, l)
		}
		var smp []byte
		smp = protowire.AppendTag(smp, 1, protowire.Fixed64Type)
		smp = protowire.AppendFixed64(smp, math.Float64bits(s.Value))
		smp = protowire.AppendTag(smp, 2, protowire.VarintType)
		smp = protowire.AppendVarint(smp, uint64(s.At.UnixMilli()))
		ts = protowire.AppendTag(ts, 2, protowire.BytesType)
		ts = protowire.AppendBytes(ts, smp)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappy.Encode(nil, req)
}

// RemoteWriter pushes series to a Prometheus remote-write receiver.
type RemoteWriter struct {
	URL    string // e.g. http://127.0.0.1:9090/api/v1/write
	Client *http.Client
}

// Push sends one WriteRequest.
func (w RemoteWriter) Push(ctx context.Context, series []Series) error {
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(EncodeWriteRequest(series)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("remote write %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("remote write %s: %s: %s", w.URL, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

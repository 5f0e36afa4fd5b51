package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// FileTarget appends each matched envelope as one JSON line to a file and
// fsyncs once per batch before acknowledging.
type FileTarget struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

var (
	_ Target = (*FileTarget)(nil)
	_ Closer = (*FileTarget)(nil)
)

// OpenFileTarget opens (creating it and its directory) the JSONL file at path.
func OpenFileTarget(path string) (*FileTarget, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("analytics: file target: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("analytics: file target: %w", err)
	}
	return &FileTarget{path: path, f: f}, nil
}

// Deliver implements Target.
func (t *FileTarget) Deliver(ctx context.Context, ds []Delivery) error {
	var buf bytes.Buffer
	for _, d := range ds {
		// The record value is the envelope as published; compact it so one
		// event is one line whatever the producer's formatting.
		if err := compactLine(&buf, d.Record.Value); err != nil {
			return fmt.Errorf("write %s: %w", t.path, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", t.path, err)
	}
	return nil
}

// Close implements Closer.
func (t *FileTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

func compactLine(buf *bytes.Buffer, v []byte) error {
	if err := json.Compact(buf, v); err != nil {
		return err
	}
	return buf.WriteByte('\n')
}

package orders

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Outcomes of a placement attempt, as the ledger records them.
const (
	// OutcomeAcked: the API answered 2xx with an order id; the order exists.
	OutcomeAcked = "acked"
	// OutcomeRejected: the API answered 4xx (other than 409); no order was made.
	OutcomeRejected = "rejected"
	// OutcomeUnknown: timeout, network error, 5xx or 409 (the same key still
	// in flight): the order may or may not exist.
	OutcomeUnknown = "unknown"
)

// LedgerLine is one placement attempt (one place() call, retry included).
// The chaos verifier (harness/verify, which owns the reading side) reads
// these; README.md documents every field. This module cannot import the
// verifier, so TestLedgerGolden pins the bytes in testdata, which the
// verifier's TestReadLedgerGolden reads.
type LedgerLine struct {
	OrderID        string  `json:"orderId"`
	IdempotencyKey string  `json:"idempotencyKey"`
	UserID         string  `json:"userId"`
	Expect         string  `json:"expect"`
	Code           int     `json:"code"`
	AcceptedAt     string  `json:"acceptedAt"`
	Outcome        string  `json:"outcome"`
	SentAt         string  `json:"sentAt"`
	Ms             float64 `json:"ms"`
	Attempts       int     `json:"attempts"`
	// TotalCents is the total of Items as this client sent them (never the
	// API's answer: the verifier checks the platform against what was asked).
	TotalCents int64        `json:"totalCents,omitempty"`
	Items      []LedgerItem `json:"items,omitempty"`
	// AckTotalCents is the total the API answered with a 2xx.
	AckTotalCents int64  `json:"ackTotalCents,omitempty"`
	Error         string `json:"error,omitempty"`
	Scenario      string `json:"scenario,omitempty"`
}

// LedgerItem is one line of the order as it was sent.
type LedgerItem struct {
	SKU        string `json:"sku"`
	Qty        int64  `json:"qty"`
	PriceCents int64  `json:"priceCents"`
}

// ledger appends JSON lines to one file for every VU of the process. Each
// line goes out in a single write(2) on an O_APPEND descriptor, under a
// mutex, unbuffered: lines never interleave, and a line written survives
// k6 being killed right after.
type ledger struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (l *ledger) write(line LedgerLine) error {
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("ledger %s: encode: %w", l.path, err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("ledger %s: write: %w", l.path, err)
	}
	return nil
}

// ledgers shares one open ledger per file among the VUs of a process.
type ledgers struct {
	mu    sync.Mutex
	files map[string]*ledger
}

// open returns the ledger at path, creating the file and its directory on
// first use. An existing file is appended to, never truncated.
func (ls *ledgers) open(path string) (*ledger, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.files[abs]; ok {
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	if ls.files == nil {
		ls.files = map[string]*ledger{}
	}
	l := &ledger{path: path, f: f}
	ls.files[abs] = l
	return l, nil
}

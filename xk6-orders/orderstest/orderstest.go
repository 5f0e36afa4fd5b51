// Package orderstest is a stand-in for the Stampede Orders API, for the
// extension's tests and for measuring k6's own overhead. It keeps orders in
// memory and moves each one through the saga's statuses on a clock, along
// the path its contents imply (declined token, SKU-OOS, country XX). It is
// not the platform and proves nothing about it.
package orderstest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Paths through the saga, by expected outcome.
var (
	pathComplete      = []string{"pending", "processing", "reserving_inventory", "charging_payment", "creating_shipment", "shipped", "in_transit"}
	pathDeclined      = []string{"pending", "processing", "reserving_inventory", "charging_payment", "compensating", "failed"}
	pathOutOfStock    = []string{"pending", "processing", "reserving_inventory", "failed"}
	pathUndeliverable = []string{"pending", "processing", "reserving_inventory", "charging_payment", "creating_shipment", "compensating", "failed"}
)

// Server is the stub API. The zero value is not usable; use New.
type Server struct {
	// Step is the time between two statuses of an order.
	Step time.Duration
	// AcceptDelay holds every POST this long before answering, with the
	// idempotency key marked in flight (so a concurrent duplicate gets 409).
	AcceptDelay time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ReadToken, when set, is the bearer GET /v1/orders/{id} requires (401
	// naming Authorization without it), as the real API's guard does;
	// placing stays anonymous.
	ReadToken string

	postsWithToken atomic.Int64

	mu       sync.Mutex
	orders   map[string]*order
	keys     map[string]*keyed
	inFlight map[string]bool
}

type order struct {
	id, userID, currency, reason string
	total                        int64
	created                      time.Time
	path                         []string
}

type keyed struct {
	hash     [32]byte
	response []byte
	orderID  string
}

// New returns a stub whose orders advance one status every step.
func New(step time.Duration) *Server {
	return &Server{Step: step, orders: map[string]*order{}, keys: map[string]*keyed{}, inFlight: map[string]bool{}}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler serves POST /v1/orders, GET /v1/orders/{id} and GET /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.create)
	mux.HandleFunc("GET /v1/orders/{id}", s.get)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// Len is the number of orders created.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders)
}

// Has reports whether the order exists.
func (s *Server) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.orders[id]
	return ok
}

type createRequest struct {
	UserID   string `json:"userId"`
	Currency string `json:"currency"`
	Items    []struct {
		SKU        string `json:"sku"`
		Qty        int64  `json:"qty"`
		PriceCents int64  `json:"priceCents"`
	} `json:"items"`
	ShippingAddress struct {
		PostalCode string `json:"postalCode"`
		Country    string `json:"country"`
	} `json:"shippingAddress"`
	Payment struct {
		Method string `json:"method"`
		Token  string `json:"token"`
	} `json:"payment"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		s.postsWithToken.Add(1)
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		writeError(w, http.StatusBadRequest, "Idempotency-Key", "at most 255 characters")
		return
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 64<<10)); err != nil {
		writeError(w, http.StatusBadRequest, "", "unreadable body")
		return
	}
	var req createRequest
	if err := json.Unmarshal(buf.Bytes(), &req); err != nil {
		writeError(w, http.StatusBadRequest, "", "body must be a JSON object")
		return
	}
	if field, msg := validate(req); field != "" {
		writeError(w, http.StatusBadRequest, field, msg)
		return
	}
	hash := sha256.Sum256(buf.Bytes())

	s.mu.Lock()
	if key != "" {
		if k, ok := s.keys[key]; ok {
			s.mu.Unlock()
			if k.hash != hash {
				writeError(w, http.StatusUnprocessableEntity, "Idempotency-Key", "key already used for a different request body")
				return
			}
			writeAccepted(w, k.orderID, k.response)
			return
		}
		if s.inFlight[key] {
			s.mu.Unlock()
			writeError(w, http.StatusConflict, "Idempotency-Key", "a request with this key is still in flight; retry later")
			return
		}
		s.inFlight[key] = true
	}
	s.mu.Unlock()

	if s.AcceptDelay > 0 {
		time.Sleep(s.AcceptDelay)
	}
	o := &order{id: newID(), userID: req.UserID, currency: req.Currency, created: s.now().UTC(), path: pathComplete}
	for _, it := range req.Items {
		o.total += it.Qty * it.PriceCents
		if it.SKU == "SKU-OOS" {
			o.path, o.reason = pathOutOfStock, "out of stock: SKU-OOS"
		}
	}
	switch {
	case o.reason != "":
	case req.Payment.Token == "tok_declined" || req.Payment.Token == "tok_insufficient_funds":
		o.path, o.reason = pathDeclined, "payment declined"
	case req.ShippingAddress.Country == "XX" || req.ShippingAddress.PostalCode == "00000":
		o.path, o.reason = pathUndeliverable, "address undeliverable"
	}
	resp, _ := json.Marshal(map[string]any{"orderId": o.id, "status": "pending", "totalCents": o.total})

	s.mu.Lock()
	s.orders[o.id] = o
	if key != "" {
		s.keys[key] = &keyed{hash: hash, response: resp, orderID: o.id}
		delete(s.inFlight, key)
	}
	s.mu.Unlock()
	writeAccepted(w, o.id, resp)
}

func validate(req createRequest) (field, msg string) {
	switch {
	case req.UserID == "":
		return "userId", "required field missing"
	case req.Currency == "":
		return "currency", "required field missing"
	case len(req.Items) == 0:
		return "items", "an order needs at least one line"
	case req.Payment.Token == "":
		return "payment.token", "required field missing"
	}
	for i, it := range req.Items {
		if it.SKU == "" {
			return fmt.Sprintf("items[%d].sku", i), "required field missing"
		}
		if it.Qty < 1 || it.Qty > 1000 {
			return fmt.Sprintf("items[%d].qty", i), "must be between 1 and 1000"
		}
	}
	return "", ""
}

// PostsWithToken counts the POSTs that carried an Authorization header.
func (s *Server) PostsWithToken() int64 { return s.postsWithToken.Load() }

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if s.ReadToken != "" && r.Header.Get("Authorization") != "Bearer "+s.ReadToken {
		writeError(w, http.StatusUnauthorized, "Authorization", "missing or wrong token: send Authorization: Bearer with the user's or the service token")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	o, ok := s.orders[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "id", fmt.Sprintf("no order %q", id))
		return
	}
	step := s.Step
	if step <= 0 {
		step = time.Millisecond
	}
	n := min(int(s.now().Sub(o.created)/step)+1, len(o.path))
	type entry struct {
		Status string    `json:"status"`
		At     time.Time `json:"at"`
	}
	history := make([]entry, n)
	for i := range history {
		history[i] = entry{Status: o.path[i], At: o.created.Add(time.Duration(i) * step)}
	}
	status := o.path[n-1]
	reason := ""
	if status == "failed" {
		reason = o.reason
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"orderId": o.id, "userId": o.userID, "currency": o.currency, "totalCents": o.total,
		"status": status, "failureReason": reason, "createdAt": o.created,
		"updatedAt": history[n-1].At, "history": history,
	})
}

func writeAccepted(w http.ResponseWriter, id string, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/v1/orders/"+id)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newID is a random UUID (version 4), like the platform's order ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

package orders

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/grafana/sobek"
)

// Outcomes an order is generated to reach. The platform decides them from
// the order itself: the payment token, an out-of-stock SKU, the country.
const (
	ExpectComplete      = "complete"
	ExpectDeclined      = "declined"
	ExpectOutOfStock    = "out_of_stock"
	ExpectUndeliverable = "undeliverable"
)

// Test fixtures of the platform that produce each outcome.
const (
	TokenOK            = "tok_visa"
	TokenDeclined      = "tok_declined"
	SKUOutOfStock      = "SKU-OOS"
	CountryUnreachable = "XX"
)

// Mix is the share of generated orders expected to end in each failing
// outcome; the rest are expected to complete.
type Mix struct {
	Declined      float64
	OutOfStock    float64
	Undeliverable float64
}

// ParseMix reads "declined=0.05,out_of_stock=0.02,undeliverable=0.01".
// Omitted outcomes are 0; the shares must be in [0,1] and sum to at most 1.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix: %q is not outcome=share", part)
		}
		name = strings.TrimSpace(name)
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return Mix{}, fmt.Errorf("mix: %s: %q is not a number", name, val)
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("mix: %s given twice", name)
		}
		seen[name] = true
		if err := m.set(name, f); err != nil {
			return Mix{}, err
		}
	}
	return m, m.validate()
}

// mixFromObject reads {declined: 0.05, out_of_stock: 0.02, ...}.
func mixFromObject(obj map[string]any) (Mix, error) {
	var m Mix
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := toFloat(obj[k])
		if !ok {
			return Mix{}, fmt.Errorf("mix: %s: want a number, got %s", k, describe(obj[k]))
		}
		if err := m.set(k, f); err != nil {
			return Mix{}, err
		}
	}
	return m, m.validate()
}

func (m *Mix) set(name string, f float64) error {
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("mix: %s: share must be between 0 and 1, got %v", name, f)
	}
	switch name {
	case ExpectDeclined:
		m.Declined = f
	case ExpectOutOfStock:
		m.OutOfStock = f
	case ExpectUndeliverable:
		m.Undeliverable = f
	default:
		return fmt.Errorf("mix: unknown outcome %q (want %s, %s or %s; the rest are %s)",
			name, ExpectDeclined, ExpectOutOfStock, ExpectUndeliverable, ExpectComplete)
	}
	return nil
}

func (m Mix) validate() error {
	if sum := m.Declined + m.OutOfStock + m.Undeliverable; sum > 1+1e-9 {
		return fmt.Errorf("mix: shares sum to %v, more than 1", sum)
	}
	return nil
}

// String formats m the way ParseMix reads it.
func (m Mix) String() string {
	return fmt.Sprintf("%s=%g,%s=%g,%s=%g", ExpectDeclined, m.Declined,
		ExpectOutOfStock, m.OutOfStock, ExpectUndeliverable, m.Undeliverable)
}

// pick maps a uniform u in [0,1) to an outcome.
func (m Mix) pick(u float64) string {
	switch {
	case u < m.Declined:
		return ExpectDeclined
	case u < m.Declined+m.OutOfStock:
		return ExpectOutOfStock
	case u < m.Declined+m.OutOfStock+m.Undeliverable:
		return ExpectUndeliverable
	default:
		return ExpectComplete
	}
}

// zipf draws ranks 1..n with probability proportional to 1/k^s, by binary
// search over the cumulative weights. It is read-only once built.
type zipf struct {
	cdf []float64
}

func newZipf(n int, s float64) *zipf {
	cdf := make([]float64, n)
	var sum float64
	for k := 1; k <= n; k++ {
		sum += 1 / math.Pow(float64(k), s)
		cdf[k-1] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipf{cdf: cdf}
}

// rank maps a uniform u in [0,1) to a rank in 1..n.
func (z *zipf) rank(u float64) int {
	i := sort.SearchFloat64s(z.cdf, u)
	if i >= len(z.cdf) {
		i = len(z.cdf) - 1
	}
	if z.cdf[i] == u && i+1 < len(z.cdf) {
		i++ // SearchFloat64s finds the first cdf >= u; the bucket of u ends at cdf[i] exclusive
	}
	return i + 1
}

// GenConfig is what a generated order stream depends on.
type GenConfig struct {
	Seed     int64
	Mix      Mix
	Users    int     // user ids u-1..u-Users
	SKUs     int     // SKU-00001..SKU-<SKUs>
	UserZipf float64 // exponent of the user popularity
	SKUZipf  float64 // exponent of the SKU popularity
	Run      string  // idempotency key prefix that makes keys unique per run
	Scenario string  // part of the key, so two scenarios never share one
}

// Generator turns (config, iteration) into an order; the same pair always
// gives the same order.
type Generator struct {
	cfg   GenConfig
	users *zipf
	skus  *zipf
}

// NewGenerator returns a generator over prebuilt popularity tables.
func NewGenerator(cfg GenConfig, users, skus *zipf) *Generator {
	return &Generator{cfg: cfg, users: users, skus: skus}
}

// Item is one order line.
type Item struct {
	SKU        string `json:"sku"`
	Qty        int64  `json:"qty"`
	PriceCents int64  `json:"priceCents"`
}

// Address is a shipping address.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// Order is a generated order: the request body plus what the harness needs
// to audit it (expected outcome, idempotency key, where it came from).
type Order struct {
	UserID          string
	Currency        string
	Items           []Item
	ShippingAddress Address
	PaymentToken    string
	Expect          string
	IdempotencyKey  string
	Seed            int64
	Iteration       uint64
}

// TotalCents is the sum of the lines.
func (o Order) TotalCents() int64 {
	var t int64
	for _, it := range o.Items {
		t += it.Qty * it.PriceCents
	}
	return t
}

// toJS builds the plain JS object a script sees, keys in a fixed order so
// JSON.stringify(order) is as deterministic as the order; place() sends its
// API fields.
func (o Order) toJS(rt *sobek.Runtime) *sobek.Object {
	obj := func(kv ...any) *sobek.Object {
		x := rt.NewObject()
		for i := 0; i < len(kv); i += 2 {
			_ = x.Set(kv[i].(string), kv[i+1])
		}
		return x
	}
	items := make([]any, len(o.Items))
	for i, it := range o.Items {
		items[i] = obj("sku", it.SKU, "qty", it.Qty, "priceCents", it.PriceCents)
	}
	a := o.ShippingAddress
	return obj(
		"userId", o.UserID,
		"currency", o.Currency,
		"items", rt.NewArray(items...),
		"shippingAddress", obj("name", a.Name, "line1", a.Line1, "city", a.City, "postalCode", a.PostalCode, "country", a.Country),
		"payment", obj("method", "card", "token", o.PaymentToken),
		"expect", o.Expect,
		"idempotencyKey", o.IdempotencyKey,
		"seed", o.Seed,
		"iteration", int64(o.Iteration), //nolint:gosec // iterations stay far below 2^63
		"totalCents", o.TotalCents(),
	)
}

// stream is a per-order random source: PCG seeded by (seed, iteration), so
// any order can be regenerated alone.
type stream struct{ pcg *rand.PCG }

func newStream(seed int64, iteration uint64) stream {
	return stream{pcg: rand.NewPCG(uint64(seed), splitmix(iteration^0x5eed))} //nolint:gosec // bits, not a quantity
}

// float is uniform in [0,1).
func (s stream) float() float64 { return float64(s.pcg.Uint64()>>11) / (1 << 53) }

// intn is uniform in [0,n); the modulo bias is below 2^-50 for these n.
func (s stream) intn(n int) int { return int(s.pcg.Uint64() % uint64(n)) } //nolint:gosec // n is small and positive

// weighted picks an index with probability proportional to w.
func (s stream) weighted(w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	r := s.intn(total)
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

// splitmix is SplitMix64's finalizer: a fixed bijective scrambler for
// hashing small integers (user and SKU numbers) into stable attributes.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var (
	lineWeights = []int{40, 25, 15, 12, 8} // 1..5 lines
	qtyWeights  = []int{70, 20, 10}        // qty 1..3
)

// Order returns the order of the given iteration.
func (g *Generator) Order(iteration uint64) Order {
	r := newStream(g.cfg.Seed, iteration)
	// The outcome is the first draw and only changes what it must, so two
	// mixes over the same seed give the same users, lines and addresses.
	expect := g.cfg.Mix.pick(r.float())
	user := g.users.rank(r.float())
	lines := min(r.weighted(lineWeights)+1, g.cfg.SKUs)

	o := Order{
		UserID:          "u-" + strconv.Itoa(user),
		Expect:          expect,
		Seed:            g.cfg.Seed,
		Iteration:       iteration,
		PaymentToken:    TokenOK,
		IdempotencyKey:  g.key(iteration),
		ShippingAddress: addressOf(user),
	}
	o.Currency = currencyOf(o.ShippingAddress.Country)
	seen := make(map[int]bool, lines)
	for len(o.Items) < lines {
		sku := g.skus.rank(r.float())
		qty := int64(r.weighted(qtyWeights) + 1)
		if seen[sku] {
			// Redraw a clash from a fixed neighbour so the loop ends even
			// when the hottest SKU keeps coming up.
			for seen[sku] {
				sku = sku%g.cfg.SKUs + 1
			}
		}
		seen[sku] = true
		o.Items = append(o.Items, Item{SKU: skuName(sku), Qty: qty, PriceCents: priceOf(sku)})
	}
	switch expect {
	case ExpectDeclined:
		o.PaymentToken = TokenDeclined
	case ExpectOutOfStock:
		o.Items[0] = Item{SKU: SKUOutOfStock, Qty: 1, PriceCents: 4999}
	case ExpectUndeliverable:
		o.ShippingAddress.Country = CountryUnreachable
	}
	return o
}

func (g *Generator) key(iteration uint64) string {
	parts := []string{}
	if g.cfg.Run != "" {
		parts = append(parts, g.cfg.Run)
	}
	if g.cfg.Scenario != "" {
		parts = append(parts, g.cfg.Scenario)
	}
	parts = append(parts, "s"+strconv.FormatInt(g.cfg.Seed, 10), "i"+strconv.FormatUint(iteration, 10))
	return strings.Join(parts, ":")
}

func skuName(n int) string { return fmt.Sprintf("SKU-%05d", n) }

// priceOf is a stable price per SKU: 0.99 to 199.99 in steps of 1.00.
func priceOf(sku int) int64 { return int64(splitmix(uint64(sku))%200)*100 + 99 } //nolint:gosec // sku > 0

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus", "Frances", "Dennis"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman", "Torvalds", "Allen", "Ritchie"}
	streets    = []string{"Main St", "Oak Ave", "Elm St", "Maple Dr", "Cedar Ln", "Pine Rd", "High St", "Station Rd", "Church St", "Park Ave"}
	places     = []struct {
		country string
		share   int
		cities  []string
	}{
		{"US", 70, []string{"Springfield", "Portland", "Austin", "Denver", "Madison", "Raleigh"}},
		{"GB", 10, []string{"London", "Leeds", "Bristol", "Glasgow"}},
		{"DE", 10, []string{"Berlin", "Hamburg", "Munich", "Cologne"}},
		{"FR", 10, []string{"Paris", "Lyon", "Lille", "Nantes"}},
	}
)

// addressOf is a stable address per user, so a user always ships to the
// same place and a country always pays in the same currency.
func addressOf(user int) Address {
	h := splitmix(uint64(user)) //nolint:gosec // user > 0
	pick := func(n int) int {
		v := int(h % uint64(n)) //nolint:gosec // n is small and positive
		h = splitmix(h)
		return v
	}
	share := pick(100)
	place := places[0]
	for _, p := range places {
		if share < p.share {
			place = p
			break
		}
		share -= p.share
	}
	a := Address{
		Name:    firstNames[pick(len(firstNames))] + " " + lastNames[pick(len(lastNames))],
		Line1:   strconv.Itoa(1+pick(9999)) + " " + streets[pick(len(streets))],
		City:    place.cities[pick(len(place.cities))],
		Country: place.country,
	}
	switch place.country {
	case "GB":
		a.PostalCode = fmt.Sprintf("SW%d %dAA", 1+pick(20), 1+pick(9))
	default:
		// 10000..99999: never the undeliverable "00000".
		a.PostalCode = strconv.Itoa(10000 + pick(90000))
	}
	return a
}

func currencyOf(country string) string {
	switch country {
	case "GB":
		return "GBP"
	case "DE", "FR":
		return "EUR"
	default:
		return "USD"
	}
}

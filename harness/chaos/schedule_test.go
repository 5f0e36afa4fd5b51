package chaos

import (
	"reflect"
	"testing"
	"time"
)

func TestPlanIsDeterministicBySeed(t *testing.T) {
	for _, profile := range []string{ProfileShort, ProfileFull} {
		faults, err := Faults(profile)
		if err != nil {
			t.Fatal(err)
		}
		d := DefaultDuration(profile)
		a, err := Plan(faults, d, 42)
		if err != nil {
			t.Fatalf("%s: %v", profile, err)
		}
		b, _ := Plan(faults, d, 42)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: same seed gave two plans:\n%v\n%v", profile, a, b)
		}
		c, _ := Plan(faults, d, 43)
		if reflect.DeepEqual(a, c) {
			t.Errorf("%s: seeds 42 and 43 gave the same plan", profile)
		}
		from, to := Peak(d)
		for i, p := range a {
			if p.At < from || p.End() > to {
				t.Errorf("%s: %s at %s..%s, want inside the 5x hold %s..%s", profile, p.Name, p.At, p.End(), from, to)
			}
			if i > 0 && p.At < a[i-1].End() {
				t.Errorf("%s: %s starts at %s before %s ends at %s", profile, p.Name, p.At, a[i-1].Name, a[i-1].End())
			}
		}
		if len(a) != len(faults) {
			t.Errorf("%s: planned %d faults, want %d", profile, len(a), len(faults))
		}
	}
}

func TestPlanRefusesAnOverfullHold(t *testing.T) {
	if _, err := Plan(ShortFaults(), 60*time.Second, 1); err == nil {
		t.Errorf("a 1m run holds 55 s of faults in a 24 s hold: want an error")
	}
}

func TestSelectAndOverride(t *testing.T) {
	f, err := Select(ShortFaults(), nil, []string{"payments-kill"})
	if err != nil || len(f) != 4 {
		t.Fatalf("skip: got %d faults, %v; want 4", len(f), err)
	}
	if _, err := Select(ShortFaults(), []string{"nope"}, nil); err == nil {
		t.Errorf("unknown fault: want an error")
	}
	o, err := Override(ShortFaults(), "payments-refused=3s")
	if err != nil || o[0].Duration != 3*time.Second || ShortFaults()[0].Duration != 15*time.Second {
		t.Errorf("override: got %v, %v", o[0].Duration, err)
	}
	if _, err := Override(ShortFaults(), "payments-refused=x"); err == nil {
		t.Errorf("bad duration: want an error")
	}
}

func TestFaultWindowsForK6(t *testing.T) {
	plan := []Planned{
		{Spec: Spec{Name: "a", Kind: KindDisable, Duration: 15 * time.Second}, At: 90 * time.Second},
		{Spec: Spec{Name: "b", Kind: KindKill, Duration: 5 * time.Second}, At: 150 * time.Second},
	}
	if got, want := FaultWindows(plan), "88-107,148-177"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

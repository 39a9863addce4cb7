package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSetRouteValidation(t *testing.T) {
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("c%02d", i)
	}
	tests := []struct {
		name     string
		prefix   string
		carriers []string
		want     error
	}{
		{"catch-all", "+", []string{"alpha"}, nil},
		{"country", "+44", []string{"beta", "alpha"}, nil},
		{"full number", "+123456789012345", []string{"alpha"}, nil},
		{"ten carriers", "+1", many[:10], nil},
		{"empty prefix", "", []string{"alpha"}, ErrInvalid},
		{"no plus", "44", []string{"alpha"}, ErrInvalid},
		{"letters", "+4a", []string{"alpha"}, ErrInvalid},
		{"space", "+4 4", []string{"alpha"}, ErrInvalid},
		{"too long", "+1234567890123456", []string{"alpha"}, ErrInvalid},
		{"no carriers", "+44", nil, ErrInvalid},
		{"eleven carriers", "+44", many, ErrInvalid},
		{"unknown carrier", "+44", []string{"alpha", "omega"}, ErrUnknownCarrier},
		{"carrier twice", "+44", []string{"alpha", "beta", "alpha"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Carriers: append(slices.Clone(testCarriers), many...)})
			r, err := e.svc.SetRoute(context.Background(), tt.prefix, tt.carriers)
			wantErr(t, "SetRoute", err, tt.want)
			if tt.want != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("SetRoute error %v does not wrap ErrInvalid", err)
				}
				if len(e.svc.ListRoutes()) != 0 {
					t.Fatal("a rejected route is in the table")
				}
				return
			}
			if r.Prefix != tt.prefix || !slices.Equal(r.Carriers, tt.carriers) || !r.CreatedAt.Equal(e.clock.Now()) {
				t.Fatalf("SetRoute = %+v", r)
			}
		})
	}
}

func TestRoutesSetReplaceListDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	carriers := []string{"beta", "alpha"}
	if _, err := e.svc.SetRoute(ctx, "+44", carriers); err != nil {
		t.Fatal(err)
	}
	carriers[0] = "gamma" // the route must not alias the caller's slice
	for _, p := range []string{"+1", "+", "+4420"} {
		if _, err := e.svc.SetRoute(ctx, p, []string{"alpha"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SetRoute(ctx, "+1", []string{"delta", "beta"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range e.svc.ListRoutes() {
		got = append(got, r.Prefix+"="+strings.Join(r.Carriers, ","))
	}
	want := []string{"+=alpha", "+1=delta,beta", "+44=beta,alpha", "+4420=alpha"}
	if !slices.Equal(got, want) {
		t.Fatalf("ListRoutes = %v, want %v", got, want)
	}
	wantErr(t, "DeleteRoute unknown", e.svc.DeleteRoute(ctx, "+33"), ErrRouteNotFound)
	wantErr(t, "DeleteRoute", e.svc.DeleteRoute(ctx, "+4420"), nil)
	wantErr(t, "DeleteRoute again", e.svc.DeleteRoute(ctx, "+4420"), ErrRouteNotFound)
	if n := len(e.svc.ListRoutes()); n != 3 {
		t.Fatalf("%d routes after delete, want 3", n)
	}
	if st := e.svc.Stats(); st.Routes != 3 {
		t.Fatalf("Stats.Routes = %d", st.Routes)
	}
}

// TestResolveCarriers checks that the callee's longest matching prefix
// wins, "+" catches everything, and with no match the carrier owning the
// proxy number carries the call.
func TestResolveCarriers(t *testing.T) {
	const (
		proxy  = "+15550000001" // owned by alpha
		us     = "+14155550100"
		london = "+442071234567"
	)
	tests := []struct {
		name   string
		routes map[string][]string
		from   string
		want   []string // carriers towards the other participant
	}{
		{"no routes: owner", nil, us, []string{"alpha"}},
		{"no match: owner", map[string][]string{"+1": {"beta"}}, us, []string{"alpha"}},
		{"country", map[string][]string{"+44": {"beta"}}, us, []string{"beta"}},
		{"longest wins", map[string][]string{"+4": {"delta"}, "+44": {"beta"}, "+4420": {"gamma", "beta"}}, us, []string{"gamma", "beta"}},
		{"full number wins", map[string][]string{"+44": {"beta"}, london: {"delta"}}, us, []string{"delta"}},
		{"catch-all", map[string][]string{"+": {"delta"}}, us, []string{"delta"}},
		{"catch-all loses to a prefix", map[string][]string{"+": {"delta"}, "+442": {"gamma"}}, us, []string{"gamma"}},
		{"routed by the callee, not the caller", map[string][]string{"+44": {"beta"}, "+1": {"gamma"}}, london, []string{"gamma"}},
		{"longer non-matching prefix ignored", map[string][]string{"+447": {"beta"}, "+44": {"gamma"}}, us, []string{"gamma"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, Options{})
			e.addNumber(t, AddNumberRequest{Number: proxy, Carrier: "alpha"})
			for p, cs := range tt.routes {
				if _, err := e.svc.SetRoute(ctx, p, cs); err != nil {
					t.Fatal(err)
				}
			}
			e.create(t, pair(us, london))
			for _, resolve := range []func(context.Context, string, string) (Decision, error){e.svc.ResolveCall, e.svc.ResolveMessage} {
				d, err := resolve(ctx, tt.from, proxy)
				if err != nil {
					t.Fatalf("resolve: %v", err)
				}
				if !slices.Equal(d.Carriers, tt.want) {
					t.Fatalf("Carriers = %v, want %v", d.Carriers, tt.want)
				}
			}
		})
	}
}

func TestRouteChangesApplyToOpenSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	e.addNumbers(t, "+15550000001")
	e.create(t, pair("+14155550100", "+442071234567"))
	carriers := func() []string {
		t.Helper()
		d, err := e.svc.ResolveCall(ctx, "+14155550100", "+15550000001")
		if err != nil {
			t.Fatal(err)
		}
		return d.Carriers
	}
	if got := carriers(); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("before routes: %v", got)
	}
	if _, err := e.svc.SetRoute(ctx, "+44", []string{"beta", "gamma"}); err != nil {
		t.Fatal(err)
	}
	if got := carriers(); !slices.Equal(got, []string{"beta", "gamma"}) {
		t.Fatalf("after SetRoute: %v", got)
	}
	if _, err := e.svc.SetRoute(ctx, "+44", []string{"delta"}); err != nil {
		t.Fatal(err)
	}
	if got := carriers(); !slices.Equal(got, []string{"delta"}) {
		t.Fatalf("after replacing the route: %v", got)
	}
	if err := e.svc.DeleteRoute(ctx, "+44"); err != nil {
		t.Fatal(err)
	}
	if got := carriers(); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("after DeleteRoute: %v", got)
	}
}

package routing

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestDecisionsGolden replays testdata/decisions.txt, a script of numbers,
// routes, sessions, clock moves and lookups, and compares every answer with
// testdata/decisions.golden. Session ids are random, so the script names
// sessions and the answers use those names.
var sessionIDRE = regexp.MustCompile(`ses_[0-9a-f]{32}`)

func TestDecisionsGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "decisions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := runDecisionScript(t, string(in))
	goldenPath := filepath.Join("testdata", "decisions.golden")
	if *update {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("decisions differ from %s (run with -update if the change is intended):\n%s", goldenPath, lineDiff(string(want), got))
	}
}

func runDecisionScript(t *testing.T, script string) string {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, Options{FallbackNumber: "+18005550100"})
	names := map[string]string{} // session id -> script name
	byName := map[string]string{}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		if id == "" {
			return ""
		}
		return "?" + id
	}
	errText := func(err error) string {
		var re *ResolveError
		if errors.As(err, &re) {
			s := "x " + re.Reason.Error()
			if re.SessionID != "" {
				s += " session=" + name(re.SessionID)
			}
			if re.Fallback != "" {
				s += " fallback=" + re.Fallback
			}
			return s
		}
		// Session ids in messages are random: show them by script name.
		msg := sessionIDRE.ReplaceAllStringFunc(err.Error(), name)
		return "error: " + msg
	}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(script))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		args := map[string]string{}
		var pos []string
		for _, a := range f[1:] {
			if k, v, ok := strings.Cut(a, "="); ok {
				args[k] = v
			} else {
				pos = append(pos, a)
			}
		}
		need := func(n int) {
			t.Helper()
			if len(pos) < n {
				t.Fatalf("decisions.txt:%d: %q needs %d arguments", lineNo, f[0], n)
			}
		}
		fmt.Fprintf(&out, "> %s\n", line)
		var res string
		switch f[0] {
		case "number":
			need(2)
			req := AddNumberRequest{Number: pos[0], Carrier: pos[1], FallbackNumber: args["fallback"]}
			for _, c := range strings.FieldsFunc(args["caps"], func(r rune) bool { return r == ',' }) {
				req.Capabilities = append(req.Capabilities, Capability(c))
			}
			req.Reserved = len(pos) > 2 && pos[2] == "reserved"
			if n, err := e.svc.AddNumber(ctx, req); err != nil {
				res = errText(err)
			} else {
				res = fmt.Sprintf("ok country=%s caps=%v reserved=%v", n.CountryCode, n.Capabilities, n.Reserved)
			}
		case "route":
			need(2)
			if _, err := e.svc.SetRoute(ctx, pos[0], strings.Split(pos[1], ",")); err != nil {
				res = errText(err)
			} else {
				res = "ok"
			}
		case "unroute":
			need(1)
			if err := e.svc.DeleteRoute(ctx, pos[0]); err != nil {
				res = errText(err)
			} else {
				res = "ok"
			}
		case "session":
			need(3)
			req := CreateSessionRequest{Participants: pos[1:3], Mode: Mode(args["mode"]), ProxyNumber: args["proxy"], UniqueName: args["unique"]}
			req.Record = len(pos) > 3 && pos[3] == "record"
			if ttl := args["ttl"]; ttl != "" {
				d, err := time.ParseDuration(ttl)
				if err != nil {
					t.Fatalf("decisions.txt:%d: %v", lineNo, err)
				}
				req.TTL = d
			}
			s, err := e.svc.CreateSession(ctx, req)
			if err != nil {
				res = errText(err)
				break
			}
			names[s.ID], byName[pos[0]] = pos[0], s.ID
			res = fmt.Sprintf("%s proxy=%s mode=%s record=%v expires=+%v", pos[0], s.ProxyNumber, s.Mode, s.Record, s.ExpiresAt.Sub(e.clock.Now()))
		case "close":
			need(1)
			s, err := e.svc.CloseSession(ctx, byName[pos[0]])
			if err != nil {
				res = errText(err)
			} else {
				res = fmt.Sprintf("%s %s (%s)", name(s.ID), s.State, s.CloseReason)
			}
		case "advance":
			need(1)
			d, err := time.ParseDuration(pos[0])
			if err != nil {
				t.Fatalf("decisions.txt:%d: %v", lineNo, err)
			}
			e.clock.Advance(d)
			res = "ok"
		case "sweep":
			res = fmt.Sprintf("closed %d", e.svc.SweepExpired(ctx))
		case "call", "text":
			need(2)
			resolve := e.svc.ResolveCall
			if f[0] == "text" {
				resolve = e.svc.ResolveMessage
			}
			d, err := resolve(ctx, pos[0], pos[1])
			if err != nil {
				res = errText(err)
			} else {
				res = fmt.Sprintf("-> %s callee=%s callerid=%s record=%v carriers=%s",
					name(d.SessionID), d.Callee, d.CallerID, d.Record, strings.Join(d.Carriers, ","))
			}
		default:
			t.Fatalf("decisions.txt:%d: unknown command %q", lineNo, f[0])
		}
		fmt.Fprintf(&out, "%s\n", res)
	}
	checkClean(t, e.db)
	return out.String()
}

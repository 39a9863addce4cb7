package smpp

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func utc(y, mo, d, h, mi, s int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

// TestParseReceipt runs receipts in the shapes carriers send them.
func TestParseReceipt(t *testing.T) {
	sub, done := utc(2024, 3, 15, 12, 30, 0), utc(2024, 3, 15, 12, 31, 0)
	for _, tc := range []struct {
		name    string
		in      string
		want    Receipt
		wantErr error
	}{
		{
			name: "SMPP 3.4 Appendix B",
			in:   "id:1234567890 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Your booking is confirmed",
			want: Receipt{ID: "1234567890", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Your booking is confirmed"},
		},
		{
			name: "upper-case keys, hex id",
			in:   "ID:0A1B2C3D SUB:001 DLVRD:000 SUBMIT DATE:2403151230 DONE DATE:2403151231 STAT:UNDELIV ERR:001 TEXT:Hi there",
			want: Receipt{ID: "0A1B2C3D", Sub: 1, SubmitDate: sub, DoneDate: done, Stat: "UNDELIV", State: Failed, Err: "001", Text: "Hi there"},
		},
		{
			name: "lower-case stat, empty text",
			in:   "id:99 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:delivrd err:000 text:",
			want: Receipt{ID: "99", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000"},
		},
		{
			name: "no text field",
			in:   "id:4f9c2a sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000",
			want: Receipt{ID: "4f9c2a", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000"},
		},
		{
			name: "id with leading zeros",
			in:   "id:0123 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:x",
			want: Receipt{ID: "0123", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000", Text: "x"},
		},
		{
			name: "UUID id",
			in:   "id:6B8F2D1E-0C4A-4E7B-9A3F-2B1C0D9E8F7A sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:test",
			want: Receipt{ID: "6B8F2D1E-0C4A-4E7B-9A3F-2B1C0D9E8F7A", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000", Text: "test"},
		},
		{
			name: "12-digit dates",
			in:   "id:77001 sub:001 dlvrd:001 submit date:240315123005 done date:240315123107 stat:DELIVRD err:000 text:Hello",
			want: Receipt{ID: "77001", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 3, 15, 12, 30, 5), DoneDate: utc(2024, 3, 15, 12, 31, 7), Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Hello"},
		},
		{
			name: "vendor fields between err and text",
			in:   "id:3c5e7a sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 mccmnc:23410 price:0.0035 text:Code 1234",
			want: Receipt{ID: "3c5e7a", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Code 1234"},
		},
		{
			name: "underscored dates, vendor field last, no sub or dlvrd",
			in:   "id:1700000000000000001 submit_date:2403151230 done_date:2403151231 stat:EXPIRED err:254 smsc:SMSC-EU1",
			want: Receipt{ID: "1700000000000000001", SubmitDate: sub, DoneDate: done, Stat: "EXPIRED", State: Expired, Err: "254"},
		},
		{
			name: "run-together date keys",
			in:   "id:8 submitdate:2403151230 donedate:2403151231 stat:DELETED",
			want: Receipt{ID: "8", SubmitDate: sub, DoneDate: done, Stat: "DELETED", State: Failed},
		},
		{
			name: "spaces after the colons",
			in:   "id: 12345 sub: 001 dlvrd: 000 submit date: 2403151230 done date: 2403151231 stat: REJECTD err: 0B3 text: spam filter",
			want: Receipt{ID: "12345", Sub: 1, SubmitDate: sub, DoneDate: done, Stat: "REJECTD", State: Failed, Err: "0B3", Text: "spam filter"},
		},
		{
			name: "empty err before text",
			in:   "id:12 stat:DELIVRD err: text:ok",
			want: Receipt{ID: "12", Stat: "DELIVRD", State: Delivered, Text: "ok"},
		},
		{
			name: "text holding field names and colons",
			in:   "id:42 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:stat:UNDELIV id:666 at 10:30",
			want: Receipt{ID: "42", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000", Text: "stat:UNDELIV id:666 at 10:30"},
		},
		{
			name: "intermediate ACCEPTD",
			in:   "id:5001 stat:ACCEPTD err:000",
			want: Receipt{ID: "5001", Stat: "ACCEPTD", State: Pending, Err: "000"},
		},
		{
			name: "ENROUTE with Text:",
			in:   "id:5002 sub:001 dlvrd:000 submit date:2403151230 done date:2403151231 stat:ENROUTE err:000 Text:Hello world",
			want: Receipt{ID: "5002", Sub: 1, SubmitDate: sub, DoneDate: done, Stat: "ENROUTE", State: Pending, Err: "000", Text: "Hello world"},
		},
		{
			name: "tabs and a trailing CRLF",
			in:   "id:5003\tsub:001\tdlvrd:001\tsubmit date:2403151230\tdone date:2403151231\tstat:DELIVRD\terr:000\r\n",
			want: Receipt{ID: "5003", Sub: 1, Dlvrd: 1, SubmitDate: sub, DoneDate: done, Stat: "DELIVRD", State: Delivered, Err: "000"},
		},
		{
			name: "impossible and short dates are zero",
			in:   "id:5004 submit date:2402301230 done date:24031512 stat:DELETED",
			want: Receipt{ID: "5004", Stat: "DELETED", State: Failed},
		},
		{
			name: "UNKNOWN",
			in:   "id:5005 sub:001 dlvrd:000 stat:UNKNOWN err:000",
			want: Receipt{ID: "5005", Sub: 1, Stat: "UNKNOWN", State: Unknown, Err: "000"},
		},
		{
			name: "unrecognised stat",
			in:   "id:5006 stat:WAITING",
			want: Receipt{ID: "5006", Stat: "WAITING", State: Unknown},
		},
		{
			name: "repeated fields: the first counts",
			in:   "id:1 id:2 stat:DELIVRD stat:UNDELIV",
			want: Receipt{ID: "1", Stat: "DELIVRD", State: Delivered},
		},
		{
			name: "stray words are skipped",
			in:   "receipt for id:9 submit stat:DELIVRD done",
			want: Receipt{ID: "9", Stat: "DELIVRD", State: Delivered},
		},
		{
			name: "stat without id",
			in:   "stat:DELIVRD err:000",
			want: Receipt{Stat: "DELIVRD", State: Delivered, Err: "000"},
		},
		{name: "empty", in: "", wantErr: ErrBadReceipt},
		{name: "an ordinary text message", in: "See you at 10:30 tomorrow", wantErr: ErrBadReceipt},
		{name: "only vendor fields", in: "foo:bar baz:qux", wantErr: ErrBadReceipt},
		{name: "id after text is text", in: "text:id:5 stat:DELIVRD", wantErr: ErrBadReceipt},
	} {
		got, err := ParseReceipt(tc.in)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestReceiptState(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want State
	}{
		{"DELIVRD", Delivered}, {"delivrd", Delivered}, {" DELIVRD ", Delivered}, {"DELIVERED", Delivered},
		{"UNDELIV", Failed}, {"REJECTD", Failed}, {"DELETED", Failed}, {"UNDELIVERABLE", Failed}, {"Rejected", Failed},
		{"EXPIRED", Expired},
		{"ACCEPTD", Pending}, {"ENROUTE", Pending}, {"accepted", Pending},
		{"UNKNOWN", Unknown}, {"", Unknown}, {"DELIV", Unknown}, {"DELIVRDX", Unknown},
		{strings.Repeat("X", 40), Unknown},
	} {
		if got := ReceiptState(tc.stat); got != tc.want {
			t.Errorf("ReceiptState(%q) = %v, want %v", tc.stat, got, tc.want)
		}
	}
	for s, want := range map[State]string{Unknown: "unknown", Pending: "pending", Delivered: "delivered", Failed: "failed", Expired: "expired", State(99): "unknown"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	for _, s := range []State{Delivered, Failed, Expired} {
		if !s.Final() {
			t.Errorf("%v not final", s)
		}
	}
	for _, s := range []State{Unknown, Pending} {
		if s.Final() {
			t.Errorf("%v final", s)
		}
	}
}

func TestStateFromMessageState(t *testing.T) {
	want := map[byte]State{
		1: Pending,   // ENROUTE
		2: Delivered, // DELIVERED
		3: Expired,   // EXPIRED
		4: Failed,    // DELETED
		5: Failed,    // UNDELIVERABLE
		6: Pending,   // ACCEPTED
		7: Unknown,   // UNKNOWN
		8: Failed,    // REJECTED
	}
	for v := range 256 {
		if got := StateFromMessageState(byte(v)); got != want[byte(v)] {
			t.Errorf("StateFromMessageState(%d) = %v, want %v", v, got, want[byte(v)])
		}
	}
}

func TestIDForms(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"0", []string{"0"}},
		{"0000", []string{"0"}},
		{"5", []string{"5"}},
		{"10", []string{"10", "a", "16"}},
		{" 0123 ", []string{"123", "7b", "291"}},
		{"7F3A9C2E", []string{"7f3a9c2e", "2134547502"}},
		{"0x1F", []string{"x1f"}},
		{"abc-def", []string{"abc-def"}},
		{"6B8F2D1E-0C4A-4E7B-9A3F-2B1C0D9E8F7A", []string{"6b8f2d1e-0c4a-4e7b-9a3f-2b1c0d9e8f7a"}},
		{"18446744073709551615", []string{"18446744073709551615", "ffffffffffffffff"}},
		{"18446744073709551616", []string{"18446744073709551616"}},
		{"ffffffffffffffff", []string{"ffffffffffffffff", "18446744073709551615"}},
		{"10000000000000000", []string{"10000000000000000", "2386f26fc10000"}}, // 17 hex digits overflow
	} {
		if got := IDForms(tc.id); !slices.Equal(got, tc.want) {
			t.Errorf("IDForms(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestIDFormsMatch checks the use IDForms is for: the id of a
// submit_sm_resp and the id of its receipt, written differently, share a
// form when one side stores every form and the other looks up its first.
func TestIDFormsMatch(t *testing.T) {
	for _, tc := range []struct{ resp, receipt string }{
		{"1A2B", "6699"},
		{"6699", "1a2b"},
		{"0000006699", "1A2B"},
		{"00001a2b", "0006699"},
		{"4294967295", "FFFFFFFF"},
		{"abc-def", "ABC-DEF"},
	} {
		stored := IDForms(tc.resp)
		if !slices.Contains(stored, IDForms(tc.receipt)[0]) {
			t.Errorf("resp %q (forms %q) does not match receipt %q", tc.resp, stored, tc.receipt)
		}
		lookups := IDForms(tc.receipt)
		if !slices.Contains(lookups, IDForms(tc.resp)[0]) {
			t.Errorf("receipt %q (forms %q) does not match resp %q", tc.receipt, lookups, tc.resp)
		}
	}
}

func TestIDFormsAllocs(t *testing.T) {
	for _, tc := range []struct {
		id   string
		most float64
	}{
		{"abc-def", 1},    // the slice
		{"7f3a9c2e", 2},   // and the decimal form
		{"0123456789", 3}, // and the hex and the decimal form
		{" ABCDEF12 ", 3}, // lower-casing, slice, decimal form
	} {
		if n := testing.AllocsPerRun(100, func() { _ = IDForms(tc.id) }); n > tc.most {
			t.Errorf("IDForms(%q): %v allocations, want at most %v", tc.id, n, tc.most)
		}
	}
}

// FuzzParseReceipt feeds any text to ParseReceipt: it must not panic, an
// accepted receipt must have an id or a stat, and its state must be what
// its stat says.
func FuzzParseReceipt(f *testing.F) {
	f.Add("id:1234567890 sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello")
	f.Add("ID: 0A1B SUBMIT DATE:240315123005 STAT: undeliv Text:")
	f.Add("id:7 submit_date:2402301230 stat:ACCEPTD vendor:x:y")
	f.Add("submit done date: id:")
	f.Add("text:id:1")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt(s)
		if err != nil {
			if !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("error %v does not wrap ErrBadReceipt", err)
			}
			return
		}
		if r.ID == "" && r.Stat == "" {
			t.Fatalf("accepted a receipt without id and stat")
		}
		if r.State != ReceiptState(r.Stat) {
			t.Fatalf("state %v for stat of %d octets", r.State, len(r.Stat))
		}
		for _, d := range []time.Time{r.SubmitDate, r.DoneDate} {
			if !d.IsZero() && (d.Year() < 2000 || d.Year() > 2099 || d.Location() != time.UTC) {
				t.Fatalf("date %v", d)
			}
		}
		forms := IDForms(r.ID)
		if strings.TrimSpace(r.ID) == "" {
			if forms != nil {
				t.Fatalf("forms of an empty id")
			}
			return
		}
		if len(forms) == 0 || len(forms) > 3 {
			t.Fatalf("%d forms", len(forms))
		}
		if c := forms[0]; c != "0" && strings.HasPrefix(c, "0") {
			t.Fatalf("canonical form keeps a leading zero")
		}
		if len(slices.Compact(slices.Sorted(slices.Values(forms)))) != len(forms) {
			t.Fatalf("repeated forms")
		}
	})
}

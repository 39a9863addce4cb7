package routing

import (
	"strings"
	"testing"
	"time"

	"github.com/veilgw/veil/store"
	"github.com/veilgw/veil/store/storetest"
)

// TestCheckSMS: Check reports SMS queue and receipt index rows that do
// not match their message, and nothing for consistent ones.
func TestCheckSMS(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	msg := func(id, status string, parts ...MessagePart) *MessageRecord {
		return &MessageRecord{V: 1, ID: id, Direction: DirectionOut, Carrier: "c1", Status: status, Parts: parts, CreatedAt: now}
	}
	sent := MessagePart{Seq: 1, CarrierID: "a1", Status: MsgSent, SubmittedAt: &now}
	done := MessagePart{Seq: 1, CarrierID: "a2", Status: MsgDelivered, SubmittedAt: &now}
	const tkey = "000001a240ecf200"
	cases := []struct {
		name string
		rows map[string]string // key -> value
		want string            // a problem contains it; "" for none
	}{
		{"consistent", map[string]string{
			"smsq/SMq":                   "{}",
			"dlr/c1/a1":                  "SMs/0",
			"dlrtime/" + tkey + "/c1/a1": "SMs/0",
		}, ""},
		{"queue row of a sent message", map[string]string{"smsq/SMs": "{}"}, "want out and queued"},
		{"queue row without record", map[string]string{"smsq/SMnone": "{}"}, "has no record"},
		{"dlr row of a final part", map[string]string{"dlr/c1/a2": "SMd/0"}, "should have no row"},
		{"dlr row of another carrier", map[string]string{"dlr/c2/a1": "SMs/0"}, "not an outbound message of carrier c2"},
		{"dlr row part out of range", map[string]string{"dlr/c1/a1": "SMs/1"}, "which has 1"},
		{"dlr row malformed value", map[string]string{"dlr/c1/a1": "SMs"}, "malformed value"},
		{"dlrtime row without record", map[string]string{"dlrtime/" + tkey + "/c1/zz": "SMnone/0"}, "has no record"},
		{"dlrtime row malformed time", map[string]string{"dlrtime/12/c1/a1": "SMs/0"}, "malformed receipt index key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.Open(t)
			b := db.NewBatch()
			for _, m := range []*MessageRecord{msg("SMq", MsgQueued, MessagePart{Seq: 1, Status: MsgQueued}), msg("SMs", MsgSent, sent), msg("SMd", MsgDelivered, done)} {
				b.SetJSON(store.Key(store.PrefixMessage, m.ID), m)
			}
			for k, v := range tc.rows {
				b.Set([]byte(k), []byte(v))
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			problems, err := Check(db)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(problems) != 0 {
					t.Errorf("problems %q, want none", problems)
				}
				return
			}
			if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
				t.Errorf("problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}

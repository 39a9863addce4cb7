package routing

import (
	"strconv"
	"strings"

	"github.com/veilgw/veil/store"
)

// checkSMS checks the SMS adapter's rows against the message records: a
// queue row (smsq/) is the row of an outbound message still queued; a
// receipt index row (dlr/, and its time-ordered twin dlrtime/) names an
// outbound message of its carrier and one of its parts, which has a
// carrier id; a dlr/ row's part is not final (its row goes in the batch
// that makes it final).
func checkSMS(db *store.DB, report func(string, ...any)) error {
	cache := make(map[string]*MessageRecord)
	get := func(id string) *MessageRecord {
		if m, ok := cache[id]; ok {
			return m
		}
		var m *MessageRecord
		if v, err := db.Get(store.Key(store.PrefixMessage, id)); err == nil {
			r := new(MessageRecord)
			if decode(v, r, &r.V) == nil {
				m = r
			}
		}
		if len(cache) < 1<<16 {
			cache[id] = m
		}
		return m
	}
	err := db.Scan([]byte(store.PrefixSMSQueue), nil, func(k, _ []byte) (bool, error) {
		parts, _ := store.SplitKey(k, store.PrefixSMSQueue, 1)
		switch m := get(parts[0]); {
		case m == nil:
			report("queue row %q names message %s, which has no record", k, parts[0])
		case m.Direction != DirectionOut || m.Status != MsgQueued:
			report("queue row %q: message %s is %s and %s, want out and queued", k, m.ID, m.Direction, m.Status)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	// part reads a receipt index value, "<message id>/<part index>".
	part := func(k []byte, carrier string, v []byte) *MessagePart {
		id, idxS, ok := strings.Cut(string(v), "/")
		idx, err := strconv.Atoi(idxS)
		if !ok || err != nil {
			report("receipt index row %q has a malformed value %q", k, v)
			return nil
		}
		m := get(id)
		switch {
		case m == nil:
			report("receipt index row %q names message %s, which has no record", k, id)
		case m.Direction != DirectionOut || m.Carrier != carrier:
			report("receipt index row %q names message %s, not an outbound message of carrier %s", k, id, carrier)
		case idx < 0 || idx >= len(m.Parts):
			report("receipt index row %q names part %d of message %s, which has %d", k, idx, id, len(m.Parts))
		case m.Parts[idx].CarrierID == "":
			report("receipt index row %q names part %d of message %s, which has no carrier id", k, idx, id)
		default:
			return &m.Parts[idx]
		}
		return nil
	}
	err = db.Scan([]byte(store.PrefixDLR), nil, func(k, v []byte) (bool, error) {
		keys, ok := store.SplitKey(k, store.PrefixDLR, 2)
		if !ok {
			report("malformed receipt index key %q", k)
			return true, nil
		}
		if p := part(k, keys[0], v); p != nil {
			switch p.Status {
			case MsgDelivered, MsgFailed, MsgExpired, MsgUnknown:
				report("receipt index row %q: its part is %s, final, and should have no row", k, p.Status)
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	return db.Scan([]byte(store.PrefixDLRTime), nil, func(k, v []byte) (bool, error) {
		keys, ok := store.SplitKey(k, store.PrefixDLRTime, 3)
		if !ok || len(keys[0]) != 16 {
			report("malformed receipt index key %q", k)
			return true, nil
		}
		if _, err := strconv.ParseUint(keys[0], 16, 64); err != nil {
			report("malformed receipt index key %q", k)
			return true, nil
		}
		part(k, keys[1], v)
		return true, nil
	})
}
